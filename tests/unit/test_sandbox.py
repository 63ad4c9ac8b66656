"""The options every user's source is opened with (engine/sandbox.py), and the codes of a
refused source (engine/ffmpeg.py ``error_from_stderr`` on ffmpeg 5.1's own words)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from openkvs.engine import sandbox
from openkvs.engine.ffmpeg import error_from_stderr
from openkvs.errors import TASK_MESSAGES, TaskError


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_a_local_file_is_a_plain_named_link_alone_in_a_private_folder(tmp_path: Path) -> None:
    obj = tmp_path / "bucket" / "in" / "frame%03d.mp4"
    obj.parent.mkdir(parents=True)
    obj.write_bytes(b"x")
    (tmp_path / "bucket" / "in" / "frame001.mp4").write_bytes(b"sibling")
    with sandbox.source_input(str(obj)) as opened:
        link = Path(opened.url)
        assert link.name == "source.mp4"  # the extension is kept for probing
        assert link.is_symlink() and link.resolve() == obj.resolve()
        assert os.listdir(link.parent) == ["source.mp4"]  # no sibling to find
        assert link.parent.stat().st_mode & 0o077 == 0
        assert opened.source == str(obj)
        args = opened.args()
    assert not link.parent.exists()  # removed with the block
    assert args[-2:] == ["-i", opened.url]
    assert _option(args, "-protocol_whitelist") == "file"
    formats = _option(args, "-format_whitelist").split(",")
    assert formats == list(sandbox.SOURCE_FORMATS)  # no image2 for a .mp4


def test_the_link_folder_is_removed_when_the_run_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), sandbox.source_input(str(tmp_path / "a.mp3")) as opened:
        folder = Path(opened.url).parent
        raise RuntimeError("ffmpeg failed")
    assert not folder.exists()


def test_no_folder_for_the_link_is_2013(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(TaskError) as err, sandbox.source_input(str(tmp_path / "a.mp3")):
        pass
    assert err.value.code == 2013


@pytest.mark.parametrize(
    ("key", "link"),
    [
        ("a.MP4", "source.MP4"),
        ("no-extension", "source"),
        ("a.tar.gz", "source.gz"),
        ("weird.e%t", "source"),  # not a plain extension: dropped
        ("dir.d/file", "source"),
        ("x." + "e" * 17, "source"),
    ],
)
def test_link_names(tmp_path: Path, key: str, link: str) -> None:
    with sandbox.source_input(str(tmp_path / key)) as opened:
        assert Path(opened.url).name == link


@pytest.mark.parametrize(
    ("key", "image2"),
    [
        ("photo.jpg", True),
        ("photo.JPEG", True),
        ("scan.tiff", True),
        ("frame%d.png", True),  # the link's name is plain, whatever the key
        ("shot%*.png", True),
        ("clip.mp4", False),
        ("drawing.svg", False),  # the SVG decoder can follow references
        ("planes.y", False),  # raw planes: image2 would open .u and .v
        ("no-extension", False),
    ],
)
def test_image2_only_for_still_image_extensions(tmp_path: Path, key: str, image2: bool) -> None:
    with sandbox.source_input(str(tmp_path / key)) as opened:
        formats = _option(opened.args(), "-format_whitelist").split(",")
    assert ("image2" in formats) is image2


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/t/source.jpg", True),
        ("/t/source%d.jpg", False),
        ("/t%x/source.jpg", False),  # anywhere in the path
        ("/t/source*.jpg", False),
        ("/t/source[1].png", False),
        ("/t/source.y", False),
    ],
)
def test_image2_needs_a_name_that_is_no_pattern(path: str, allowed: bool) -> None:
    assert sandbox.image2_allowed(path) is allowed


def test_a_relative_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.mp3").write_bytes(b"x")
    with sandbox.source_input("a.mp3") as opened:
        assert Path(opened.url).resolve() == (tmp_path / "a.mp3").resolve()


@pytest.mark.parametrize(
    ("url", "protocols"),
    [
        ("https://s3.example/b/k.mp4?X-Amz-Signature=abc", "https,tls,tcp"),
        ("HTTPS://s3.example/b/k.mp4", "https,tls,tcp"),
        ("http://127.0.0.1:9000/b/k.mp4", "http,tcp"),
    ],
)
def test_a_url_may_use_only_its_own_scheme(url: str, protocols: str) -> None:
    with sandbox.source_input(url) as opened:
        args = opened.args()
    assert opened.url == url and args[-2:] == ["-i", url]
    assert _option(args, "-protocol_whitelist") == protocols
    assert _option(args, "-format_whitelist").split(",") == list(sandbox.SOURCE_FORMATS)


@pytest.mark.parametrize(
    "source",
    [
        "concat:/a.ts|/b.ts",
        "data:text/plain;base64,SGk=",
        "pipe:0",
        "file:/etc/hostname",
        "tee:[f=mp4]x.mp4",
        "ftp://host/a.mp4",
        "rtmp://host/app",
    ],
)
def test_other_kinds_of_source_are_a_programming_error(source: str) -> None:
    with pytest.raises(ValueError), sandbox.source_input(source):
        pass


def test_ffmpeg_never_parses_the_name_of_a_local_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FFmpeg reads ``subfile,,start,0,end,10,,:/path`` as its subfile protocol; openkvs
    reads it as a relative file name, and ffmpeg only ever sees the link."""
    monkeypatch.chdir(tmp_path)
    with sandbox.source_input("subfile,,start,0,end,10,,:/etc/hostname") as opened:
        assert Path(opened.url).name == "source"
        assert Path(opened.url).readlink() == tmp_path / "subfile,,start,0,end,10,,:/etc/hostname"


def test_the_lists_do_not_overlap() -> None:
    assert not sandbox.REFERRING_FORMATS.intersection(sandbox.SOURCE_FORMATS)
    assert "image2" not in sandbox.SOURCE_FORMATS  # only added for a plain local image
    assert len(set(sandbox.SOURCE_FORMATS)) == len(sandbox.SOURCE_FORMATS)
    assert sandbox.REFUSED in TASK_MESSAGES and sandbox.NOT_MEDIA in TASK_MESSAGES


# --- refusals: ffmpeg's words → code → what the client reads ---------------------------

#: Verbatim stderr of ffprobe/ffmpeg 5.1 (``-v error``) on crafted sources.
HLS_REFUSED = (
    "[hls @ 0x5560f4af4280] Format not on whitelist 'mov,matroska,avi'\n"
    "/tmp/openkvs-source-x/source.mp4: Invalid argument\n"
)
RANDOM_REFUSED = (
    "[luodat @ 0x56367809d5c0] Format not on whitelist 'mov,matroska,avi'\n"
    "/tmp/openkvs-source-x/source.dat: Invalid argument\n"
)
NESTED_PROTOCOL_REFUSED = (  # an accepted format that opened a nested http URL
    "[http @ 0x55946943c980] Protocol 'http' not on whitelist 'file'!\n"
    "[hls @ 0x559469438280] Error when loading first segment 'http://127.0.0.1:9/seg.ts'\n"
    "/tmp/openkvs-source-x/source.m3u8: Invalid data found when processing input\n"
)


@pytest.mark.parametrize(
    "stderr", [HLS_REFUSED, RANDOM_REFUSED, NESTED_PROTOCOL_REFUSED], ids=["hls", "luodat", "http"]
)
def test_a_whitelist_refusal_beats_every_other_line(stderr: str) -> None:
    error = error_from_stderr(stderr)
    assert error.code == sandbox.REFUSED and "not on whitelist" in error.detail


def _opened(tmp_path: Path) -> sandbox.SourceInput:
    return sandbox.SourceInput(
        source=str(tmp_path / "bucket" / "in" / "clip.mp4"),
        url="/tmp/openkvs-source-x/source.mp4",
        protocols=("file",),
        formats=sandbox.SOURCE_FORMATS,
    )


def test_a_playlist_is_refused_with_2037_naming_its_format(tmp_path: Path) -> None:
    explained = _opened(tmp_path).explain(error_from_stderr(HLS_REFUSED))
    assert explained.code == 2037
    assert explained.message == "not file or directory, or maybe wrong type"
    assert explained.detail.startswith("the hls format is not accepted as a source")
    assert "single media file" in explained.detail


@pytest.mark.parametrize("name", sorted(sandbox.REFERRING_FORMATS))
def test_every_referring_format_is_2037(tmp_path: Path, name: str) -> None:
    stderr = f"[{name} @ 0x1] Format not on whitelist 'mov'\nx: Invalid argument\n"
    assert _opened(tmp_path).explain(error_from_stderr(stderr)).code == 2037


def test_bytes_that_are_no_accepted_media_stay_invalid_data(tmp_path: Path) -> None:
    explained = _opened(tmp_path).explain(error_from_stderr(RANDOM_REFUSED))
    assert explained.code == 3150
    assert explained.detail.startswith("Invalid data found when processing input")
    assert "luodat" in explained.detail


def test_a_refused_protocol_is_2037(tmp_path: Path) -> None:
    explained = _opened(tmp_path).explain(error_from_stderr(NESTED_PROTOCOL_REFUSED))
    assert explained.code == 2037
    assert explained.detail == "the source refers to a http address, which a source may not open"


def test_other_failures_keep_their_code_and_name_the_source(tmp_path: Path) -> None:
    opened = _opened(tmp_path)
    failed = error_from_stderr(f"{opened.url}: Invalid data found when processing input\n")
    explained = opened.explain(failed)
    assert (explained.code, explained.detail) == (
        3150,
        f"{opened.source}: Invalid data found when processing input",
    )
    assert opened.url not in explained.detail
    gone = opened.explain(TaskError(2041, f"{opened.url}: No such file or directory"))
    assert (gone.code, gone.detail) == (2041, f"{opened.source}: No such file or directory")


def test_folders_of_dead_processes_are_swept(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f"{sandbox.FOLDER_PREFIX}{dead.stdout.strip()}-abc123"
    mine = tmp_path / f"{sandbox.FOLDER_PREFIX}{os.getpid()}-def456"
    other = tmp_path / "openkvs-source-notapid-x"
    for folder in (stale, mine, other):
        folder.mkdir()
        (folder / "source.mp3").symlink_to("/nonexistent")
    assert sandbox.sweep_stale_folders(str(tmp_path)) == 1
    assert not stale.exists() and mine.exists() and other.exists()
