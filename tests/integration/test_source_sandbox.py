"""Crafted sources cannot make ffmpeg or ffprobe reach outside their bucket (engine/sandbox.py).

Each crafted object (an HLS playlist, also under the innocent name ``in/clip.mp4``; a DASH
manifest; a DASH manifest whose only track is a subtitle track; an ffconcat list; a VobSub
index) points at a marker outside the bucket, or at a sibling object, or at a network
address, and goes through FetchMetaInfo, an avinfo CreateTask and a CreateWaveTask of a real
``openkvs serve``. Each is refused (1016 naming the refused format, tasks failing with 2037)
and nobody ever opens the marker:

* a regular file whose access time is set far in the past must keep it (used only when a
  read here really updates the access time: checked first);
* a FIFO would block any reader until a writer comes: after the calls, opening it for
  writing without blocking must fail with ENXIO ("no reader"), and no call hung on it;
* a real TCP listener on 127.0.0.1 records every connection: there must be none.

So that these tests could fail, each crafted kind is first run through a bare ``ffprobe``
(no sandbox) and shown to read the regular marker, or to connect to the listener. A local
playlist cannot reach the network even without the sandbox (FFmpeg's default protocol list
for a local file is ``file,crypto,data``): the network is reached when the source itself is
a URL, as with S3 storage, which the engine-level tests at the end cover with a real HTTP
server. An image whose key is a pattern (``%d``, ``%*``) is read as the single image it is,
and never its siblings.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import http.server
import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.media import make_audio, make_video

from openkvs.engine import sandbox
from openkvs.engine.probe import probe
from openkvs.errors import TASK_MESSAGES, TaskError

PRESET = "sandbox_info"
OLD_ATIME_NS = 978_307_200 * 10**9  # 2001-01-01: any read since then moves it
REFUSED = ("fail", "2037", TASK_MESSAGES[2037])
BARE_PROBE_TIMEOUT = 60  # a safety net for the bare ffprobe runs, never reached

# --- what nobody may touch -----------------------------------------------------------------


class Listener:
    """A TCP server on 127.0.0.1 that counts connections and closes each at once."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.connections = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:  # closed
                return
            with self._lock:
                self.connections += 1
            conn.close()

    def take(self) -> int:
        """Connections since the last call."""
        with self._lock:
            count, self.connections = self.connections, 0
        return count

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def _age(path: Path) -> None:
    os.utime(path, ns=(OLD_ATIME_NS, path.stat().st_mtime_ns))


def _read_since_aged(path: Path) -> bool:
    return path.stat().st_atime_ns != OLD_ATIME_NS


@pytest.fixture(scope="module")
def atime_works(tmp_path_factory: pytest.TempPathFactory) -> bool:
    """Whether reading a file updates its access time here (relatime does, for an access
    time older than the modification time)."""
    probe_file = tmp_path_factory.mktemp("atime") / "probe.bin"
    probe_file.write_bytes(b"x" * 4096)
    _age(probe_file)
    probe_file.read_bytes()
    return _read_since_aged(probe_file)


@dataclass
class Target:
    """What a crafted source points at, and how to check that it was never touched."""

    kind: str  # "file" (regular, aged), "fifo" or "net"
    ref: str  # the path or URL written into the crafted source
    path: Path | None = None  # the file or FIFO
    listener: Listener | None = None

    def reset(self) -> None:
        if self.kind == "file":
            assert self.path is not None
            _age(self.path)
        if self.listener is not None:
            self.listener.take()

    def touched(self) -> bool:
        """Whether anyone read the file, holds the FIFO open, or connected."""
        if self.kind == "file":
            assert self.path is not None
            return _read_since_aged(self.path)
        if self.kind == "fifo":
            assert self.path is not None
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO, exc  # no reader has it open
                return False
            os.close(fd)
            return True
        assert self.listener is not None
        return self.listener.take() > 0


def make_target(kind: str, folder: Path, name: str, listener: Listener) -> Target:
    if kind == "net":
        return Target(kind, f"http://127.0.0.1:{listener.port}/{name}", listener=listener)
    path = folder / name
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(b"a marker nobody may read\n" * 200)
        _age(path)
    return Target(kind, str(path), path=path)


# --- crafted sources -----------------------------------------------------------------------


def hls(ref: str) -> bytes:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n{ref}\n#EXT-X-ENDLIST\n".encode()


def _mpd(ref: str, content: str, mime: str, codecs: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1S"
     minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
 <Period>
  <AdaptationSet contentType="{content}" mimeType="{mime}">
   <Representation id="r" bandwidth="1000" codecs="{codecs}">
    <BaseURL>{ref}</BaseURL>
   </Representation>
  </AdaptationSet>
 </Period>
</MPD>
""".encode()


def dash(ref: str) -> bytes:
    return _mpd(ref, "audio", "audio/mp4", "mp4a.40.2")


def dash_subtitles(ref: str) -> bytes:
    """A manifest whose only track is a WebVTT subtitle track: the subtitle-side include of
    this FFmpeg (its HLS reader ignores subtitle renditions, and its ASS, SRT and WebVTT
    readers have no include directive)."""
    return _mpd(ref, "text", "application/mp4", "wvtt")


def ffconcat(ref: str) -> bytes:
    return f"ffconcat version 1.0\nfile '{ref}'\n".encode()


@dataclass(frozen=True)
class Kind:
    key: str  # where the crafted object is uploaded
    craft: Callable[[str], bytes]
    marker: str  # the marker's name (with an extension the format's reader accepts)
    #: Target kinds a bare ffprobe demonstrably reaches from this crafted local file.
    bare_reaches: frozenset[str] = field(default=frozenset({"file"}))


KINDS = {
    "hls": Kind("crafted/list.m3u8", hls, "marker.ts"),
    "hls-named-mp4": Kind("in/clip.mp4", hls, "marker.ts"),
    "dash": Kind("crafted/manifest.mpd", dash, "marker.mp4"),
    "dash-subtitles": Kind("crafted/subs.mpd", dash_subtitles, "marker.mp4"),
    # FFmpeg's own "safe" mode refuses absolute paths and URLs in a list; siblings below.
    "ffconcat": Kind("crafted/list.ffconcat", ffconcat, "marker.ts", frozenset()),
}


# --- the server ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def avinfo_preset(kvs: Deployment) -> Iterator[str]:
    reply = kvs.client.preset(Preset=PRESET, PresetType="avinfo", Description="", Param={})
    assert reply["ErrNum"] == 0, reply
    yield PRESET
    kvs.client.del_preset(Preset=PRESET)


def object_path(kvs: Deployment, key: str) -> Path:
    return kvs.data_dir / "buckets" / BUCKET / key


def bare_ffprobe(path: Path | str) -> None:
    """ffprobe as openkvs ran it before the sandbox (its result does not matter)."""
    subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", str(path)],
        capture_output=True,
        timeout=BARE_PROBE_TIMEOUT,
        check=False,
    )


def run_everywhere(kvs: Deployment, preset: str, src: str, wave_key: str) -> dict[str, Any]:
    """FetchMetaInfo, an avinfo task and a waveform task of ``src``; their answers."""
    fetched = kvs.client.fetch_meta_info(SrcPath=src)
    created = kvs.client.create_task(
        Preset=preset, SrcInfo=[{"path": src}], DstBucket=BUCKET, DstObjectKey=""
    )
    assert created["ErrNum"] == 0, created
    wave_id = kvs.create_wave(src, wave_key)
    avinfo = kvs.wait_task(created["TaskID"])
    wave = kvs.wait_task(wave_id)
    return {"fetch": fetched, "avinfo": avinfo, "wave": wave}


def status(info: dict[str, Any]) -> tuple[str, str, str]:
    return (info["TaskStatus"], info["ErrorCode"], info["ErrorMsg"])


def assert_refused(answers: dict[str, Any], src: str, fmt: str) -> None:
    fetched = answers["fetch"]
    assert fetched["ErrNum"] == 1016, fetched
    assert f"the {fmt} format is not accepted as a source" in fetched["ErrMsg"], fetched
    assert src in fetched["ErrMsg"] and "MetaInfo" not in fetched
    assert status(answers["avinfo"]) == REFUSED, answers["avinfo"]
    assert status(answers["wave"]) == REFUSED, answers["wave"]


# --- crafted sources through the service ---------------------------------------------------

FORMAT_OF = {"hls": "hls", "hls-named-mp4": "hls", "dash": "dash", "dash-subtitles": "dash"}
FORMAT_OF["ffconcat"] = "concat"


@pytest.mark.parametrize("target_kind", ["file", "fifo", "net"])
@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_crafted_source_is_refused_and_reaches_nothing(
    kvs: Deployment,
    avinfo_preset: str,
    listener: Listener,
    atime_works: bool,
    tmp_path: Path,
    kind_name: str,
    target_kind: str,
) -> None:
    if target_kind == "file" and not atime_works:
        pytest.skip("reads do not update access times here; the FIFO cases cover this")
    kind = KINDS[kind_name]
    target = make_target(target_kind, tmp_path, kind.marker, listener)
    crafted = tmp_path / Path(kind.key).name
    crafted.write_bytes(kind.craft(target.ref))
    src = kvs.upload(crafted, kind.key)
    if target_kind in kind.bare_reaches:
        bare_ffprobe(object_path(kvs, kind.key))
        assert target.touched(), "the crafted source does not reach its target: a vacuous test"
    target.reset()

    answers = run_everywhere(kvs, avinfo_preset, src, f"out/sandbox/{kind_name}.json")

    assert_refused(answers, src, FORMAT_OF[kind_name])
    assert not target.touched()


@pytest.mark.parametrize("target_kind", ["file", "fifo"])
@pytest.mark.parametrize(
    ("kind_name", "key", "content", "sibling", "fmt"),
    [
        ("ffconcat", "crafted/sib.ffconcat", ffconcat("part.ts"), "part.ts", "concat"),
        (
            "vobsub",
            "crafted/subs.idx",
            b"# VobSub index file, v7 (do not modify this line!)\nsize: 720x480\n"
            b"id: en, index: 0\ntimestamp: 00:00:00:000, filepos: 000000000\n",
            "subs.sub",
            "vobsub",
        ),
    ],
)
def test_crafted_source_never_reads_its_siblings(
    kvs: Deployment,
    avinfo_preset: str,
    listener: Listener,
    atime_works: bool,
    tmp_path: Path,
    kind_name: str,
    key: str,
    content: bytes,
    sibling: str,
    fmt: str,
    target_kind: str,
) -> None:
    """A list naming a sibling object, a VobSub index (it opens ``<name>.sub``)."""
    if target_kind == "file" and not atime_works:
        pytest.skip("reads do not update access times here; the FIFO cases cover this")
    crafted = tmp_path / Path(key).name
    crafted.write_bytes(content)
    src = kvs.upload(crafted, key)
    folder = object_path(kvs, key).parent
    (folder / sibling).unlink(missing_ok=True)
    target = make_target(target_kind, folder, sibling, listener)
    try:
        if target_kind == "file":
            bare_ffprobe(object_path(kvs, key))
            assert target.touched(), "the crafted source does not reach its sibling"
            target.reset()
        answers = run_everywhere(kvs, avinfo_preset, src, f"out/sandbox/{kind_name}-sib.json")
        assert_refused(answers, src, fmt)
        assert not target.touched()
    finally:
        (folder / sibling).unlink(missing_ok=True)


def _ffmpeg(*args: str | Path) -> Path:
    """Run ffmpeg; its last argument, the output, is returned."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", *map(str, args)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return Path(args[-1])


def _png(path: Path, size: str) -> Path:
    return _ffmpeg("-f", "lavfi", "-i", f"testsrc=s={size}", "-frames:v", "1", "-update", "1", path)


@pytest.mark.parametrize("target_kind", ["file", "fifo"])
@pytest.mark.parametrize(
    ("key", "sibling"),
    [("img/frame%d.png", "frame1.png"), ("img/shot%*.png", "shot1.png")],
    ids=["sequence", "glob"],
)
def test_an_image_key_is_never_a_pattern(
    kvs: Deployment,
    avinfo_preset: str,
    listener: Listener,
    atime_works: bool,
    tmp_path: Path,
    key: str,
    sibling: str,
    target_kind: str,
) -> None:
    """A real 16x16 PNG stored under a key that image2 would read as a sequence or a glob
    (its 64x64 sibling would be the first frame): read as itself, siblings untouched."""
    if target_kind == "file" and not atime_works:
        pytest.skip("reads do not update access times here; the FIFO cases cover this")
    src = kvs.upload(_png(tmp_path / "own.png", "16x16"), key)
    folder = object_path(kvs, key).parent
    (folder / sibling).unlink(missing_ok=True)
    if target_kind == "file":
        _png(folder / sibling, "64x64")
        _age(folder / sibling)
        target = Target("file", str(folder / sibling), path=folder / sibling)
        bare_ffprobe(object_path(kvs, key))
        assert target.touched(), "a bare ffprobe does not read the sibling: a vacuous test"
        target.reset()
    else:
        target = make_target("fifo", folder, sibling, listener)
    try:
        answers = run_everywhere(kvs, avinfo_preset, src, f"out/sandbox/{sibling}.json")
        fetched = answers["fetch"]
        assert fetched["ErrNum"] == 0, fetched
        [stream] = json.loads(fetched["MetaInfo"])["streams"]
        assert (stream["width"], stream["height"]) == (16, 16)
        assert status(answers["avinfo"])[:2] == ("succ", "0"), answers["avinfo"]
        # an image has no audio: the waveform fails as for any picture
        assert status(answers["wave"]) == ("fail", "2058", TASK_MESSAGES[2058])
        assert not target.touched()
    finally:
        (folder / sibling).unlink(missing_ok=True)


# --- ordinary media still works ------------------------------------------------------------

_V = ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.5"]
_A = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=0.5"]
#: name → (ffmpeg arguments before the output, ffprobe's format_name)
REAL_MEDIA: dict[str, tuple[list[str], str]] = {
    "moov-at-end.mp4": ([*_V, *_A, "-c:v", "libx264", "-c:a", "aac"], "mov,mp4,m4a,3gp,3g2,mj2"),
    "h264-ac3.mkv": ([*_V, *_A, "-c:v", "libx264", "-c:a", "ac3"], "matroska,webm"),
    "vp8-vorbis.webm": (
        [*_V, *_A, "-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libvorbis"],
        "matroska,webm",
    ),
    "mpeg2-mp2.ts": ([*_V, *_A, "-c:v", "mpeg2video", "-c:a", "mp2"], "mpegts"),
    "flv1-mp3.flv": ([*_V, *_A, "-c:v", "flv", "-c:a", "libmp3lame"], "flv"),
    "mpeg1.mpg": ([*_V, *_A, "-c:v", "mpeg1video", "-r", "25", "-c:a", "mp2"], "mpeg"),
    "msmpeg4-wma.wmv": ([*_V, *_A, "-c:v", "msmpeg4v2", "-c:a", "wmav2"], "asf"),
    "mjpeg-pcm.avi": ([*_V, *_A, "-c:v", "mjpeg", "-c:a", "pcm_s16le"], "avi"),
    "tone.mp3": ([*_A, "-c:a", "libmp3lame"], "mp3"),
    "tone.m4a": ([*_A, "-c:a", "aac"], "mov,mp4,m4a,3gp,3g2,mj2"),
    "tone.ogg": ([*_A, "-c:a", "libvorbis"], "ogg"),
    "tone.opus": ([*_A, "-c:a", "libopus", "-ar", "48000"], "ogg"),
    "tone.wav": ([*_A, "-c:a", "pcm_s16le"], "wav"),
    "tone.flac": ([*_A, "-c:a", "flac"], "flac"),
    "tone.aac": ([*_A, "-c:a", "aac", "-f", "adts"], "aac"),
    "tone.ac3": ([*_A, "-c:a", "ac3"], "ac3"),
    "tone.aiff": ([*_A, "-c:a", "pcm_s16be"], "aiff"),
    "tiny.png": ([*_V, "-frames:v", "1"], "png_pipe"),
    "tiny.jpg": ([*_V, "-frames:v", "1"], "jpeg_pipe"),
    # A photo-sized JPEG: its end marker is past the first probe buffer, so FFmpeg names it
    # image2 (read by its name), as it does most real photographs.
    "photo.jpg": (
        ["-f", "lavfi", "-i", "testsrc2=size=640x480", "-frames:v", "1", "-q:v", "2"],
        "image2",
    ),
    "tiny.webp": ([*_V, "-frames:v", "1", "-c:v", "libwebp"], "webp_pipe"),
    "tiny.bmp": ([*_V, "-frames:v", "1"], "bmp_pipe"),
    "tiny.gif": ([*_V], "gif"),
    "raw.h264": ([*_V, "-c:v", "libx264", "-f", "h264"], "h264"),
}


@pytest.mark.parametrize("name", sorted(REAL_MEDIA))
def test_ordinary_media_still_probes(kvs: Deployment, tmp_path: Path, name: str) -> None:
    src = kvs.upload(_ffmpeg(*REAL_MEDIA[name][0], tmp_path / name), f"real/{name}")
    fetched = kvs.client.fetch_meta_info(SrcPath=src)
    assert fetched["ErrNum"] == 0, fetched
    doc = json.loads(fetched["MetaInfo"])
    assert doc["format"]["format_name"] == REAL_MEDIA[name][1]
    assert doc["format"]["filename"] == src


def test_tasks_still_run_on_real_media(kvs: Deployment, avinfo_preset: str, tmp_path: Path) -> None:
    video = kvs.upload(make_video(tmp_path, "clip", seconds=1, size="64x48"), "real/clip.mp4")
    audio = kvs.upload(make_audio(tmp_path, "tone", fmt="flac", seconds=1), "real/tone.flac")
    for src in (video, audio):
        answers = run_everywhere(kvs, avinfo_preset, src, "out/sandbox/real.json")
        assert answers["fetch"]["ErrNum"] == 0, answers["fetch"]
        assert status(answers["avinfo"])[:2] == ("succ", "0"), answers["avinfo"]
        assert status(answers["wave"])[:2] == ("succ", "0"), answers["wave"]


# --- the engine, with URL sources and each layer on its own --------------------------------


@pytest.fixture(scope="module")
def web_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on 127.0.0.1 serving a folder: sources as S3 would hand them."""
    root = tmp_path_factory.mktemp("web")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("kind_name", ["hls", "dash", "dash-subtitles"])
def test_a_url_source_cannot_reach_another_address(
    web_root: tuple[Path, str], listener: Listener, kind_name: str
) -> None:
    """Served over HTTP (as from S3), a crafted source pointing at another address: a bare
    ffprobe connects to it, the sandboxed probe refuses the source and never does."""
    root, base = web_root
    kind = KINDS[kind_name]
    target = make_target("net", root, kind.marker, listener)
    name = f"{kind_name}-{Path(kind.key).name}"
    (root / name).write_bytes(kind.craft(target.ref))
    url = f"{base}/{name}"
    bare_ffprobe(url)
    assert target.touched(), "the crafted source does not reach the listener: a vacuous test"
    with pytest.raises(TaskError) as refused:
        probe(url, timeout=30)
    assert refused.value.code == 2037
    assert f"the {FORMAT_OF[kind_name]} format is not accepted" in refused.value.detail
    assert not target.touched()


def _probe_through_sandbox(
    crafted: Path, formats: tuple[str, ...]
) -> subprocess.CompletedProcess[bytes]:
    """ffprobe of ``crafted`` opened by the sandbox with ``formats`` allowed."""
    with sandbox.source_input(str(crafted), formats=formats) as opened:
        return subprocess.run(
            ["ffprobe", "-v", "error", "-show_format", *opened.args()],
            capture_output=True,
            timeout=BARE_PROBE_TIMEOUT,
            check=False,
        )


def test_the_protocol_list_alone_keeps_a_local_source_off_the_network(
    tmp_path: Path, listener: Listener
) -> None:
    """Even with playlists allowed, a local source may open nothing but files."""
    crafted = tmp_path / "list.m3u8"
    crafted.write_bytes(hls(f"http://127.0.0.1:{listener.port}/marker.ts"))
    formats = (*sandbox.SOURCE_FORMATS, "hls")
    result = _probe_through_sandbox(crafted, formats)
    assert result.returncode != 0
    assert "Protocol 'http' not on whitelist 'file'" in result.stderr.decode()
    assert listener.take() == 0


def test_the_private_folder_alone_hides_the_siblings(tmp_path: Path, listener: Listener) -> None:
    """Even with lists allowed, a relative name in a source finds nothing: ffmpeg knows the
    source only as a link alone in its own folder."""
    crafted = tmp_path / "list.ffconcat"
    crafted.write_bytes(ffconcat("part.ts"))
    target = make_target("fifo", tmp_path, "part.ts", listener)
    formats = (*sandbox.SOURCE_FORMATS, "concat")
    result = _probe_through_sandbox(crafted, formats)
    assert result.returncode != 0
    assert "No such file or directory" in result.stderr.decode()
    assert not target.touched()


# --- the installed ffmpeg ------------------------------------------------------------------


def _ffmpeg_text(*args: str) -> str:
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", *args], capture_output=True, timeout=60, check=True
    )
    return done.stdout.decode()


def test_every_accepted_format_is_a_demuxer_of_this_ffmpeg() -> None:
    lines = _ffmpeg_text("-demuxers").split("--", 1)[1].splitlines()
    names = {name for line in lines if line.split() for name in line.split()[1].split(",")}
    assert set(sandbox.SOURCE_FORMATS) <= names, set(sandbox.SOURCE_FORMATS) - names
    assert names >= sandbox.REFERRING_FORMATS, sandbox.REFERRING_FORMATS - names


def test_quicktime_external_references_are_off_by_default() -> None:
    """The sandbox relies on these defaults (it cannot pass ``-enable_drefs 0``: ffmpeg
    refuses an input option the chosen demuxer lacks)."""
    text = _ffmpeg_text("-h", "demuxer=mov")
    options = {line.split()[0]: line for line in text.splitlines() if line.strip().startswith("-")}
    assert "(default false)" in options["-enable_drefs"]
    assert "(default false)" in options["-use_absolute_path"]
