"""``avsnapshot`` end to end: the official SDK against ``openkvs serve``, real ffmpeg, a real
callback receiver. Images are compared pixel by pixel with frames ffmpeg decodes directly.

The clips are testsrc2 (every frame differs: a counter and moving shapes), so "the right
frame" is checkable: a PNG snapshot must equal one decoded frame exactly.
"""

from __future__ import annotations

import itertools
import json
import math
import secrets
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.media import make_audio, make_video, probe
from tests.support.receiver import CallbackReceiver

RATE = 25
SECONDS = 4
_names = itertools.count()

Frames = np.ndarray  # n × height × width × 3, uint8


# -- helpers shared with test_sampling.py and test_smart_cover.py ----------------------------


def decode(
    path: Path,
    *,
    before: Sequence[str] = (),
    after: Sequence[str] = (),
    size: tuple[int, int] | None = None,
) -> Frames:
    """Every frame of ``path`` as RGB, at its display size (or ``size`` when ``after``
    scales), with input options ``before`` and output options ``after`` (e.g. ``-ss``)."""
    if size is None:
        stream = next(s for s in probe(path)["streams"] if s["codec_type"] == "video")
        size = (int(stream["width"]), int(stream["height"]))
        rotation = sum(int(side.get("rotation", 0)) for side in stream.get("side_data_list", []))
        if rotation % 180:
            size = size[::-1]
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", *before, "-i", str(path), *after,
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, size[1], size[0], 3)


def image(path: Path) -> np.ndarray:
    """The one picture of an image file, RGB."""
    [picture] = decode(path)
    return picture


def nearest(frames: Frames, picture: np.ndarray) -> tuple[int, float]:
    """(index, mean absolute difference) of the frame most like ``picture``."""
    diffs = [float(np.abs(f.astype(np.int16) - picture).mean()) for f in frames]
    best = int(np.argmin(diffs))
    return best, diffs[best]


def frame_index(seconds: float, rate: int = RATE, frames: int = RATE * SECONDS) -> int:
    """The frame on screen at ``seconds`` of a constant-rate clip starting at 0."""
    return min(frames - 1, math.floor(seconds * rate + 1e-6))


def preset(kvs: Deployment, ptype: str, param: dict[str, Any]) -> str:
    name = f"{ptype}_{next(_names)}_{secrets.token_hex(4)}"  # unique in a shared server
    reply = kvs.client.preset(Preset=name, PresetType=ptype, Param=param)
    assert reply["ErrNum"] == 0, reply
    return name


def create(kvs: Deployment, name: str, src: str | list[str], **params: Any) -> str:
    sources = [src] if isinstance(src, str) else src
    body: dict[str, Any] = {
        "Preset": name,
        "SrcInfo": [{"path": s} for s in sources],
        "DstBucket": BUCKET,
        **params,
    }
    if isinstance(body.get("ExtParam"), dict):
        body["ExtParam"] = json.dumps(body["ExtParam"])
    reply = kvs.client.create_task(**body)
    assert reply["ErrNum"] == 0, reply
    return str(reply["TaskID"])


def succeeded(kvs: Deployment, task_id: str) -> dict[str, Any]:
    info = kvs.wait_task(task_id, timeout=120)
    assert info["TaskStatus"] == "succ", info
    return info


def stored(kvs: Deployment, key: str) -> Path:
    """Where local storage keeps an object of the test bucket (read in place: faster than
    ``openkvs cp``, which one test per module still uses)."""
    path = kvs.data_dir / "buckets" / BUCKET / key
    assert path.is_file(), key
    return path


def meta(kvs: Deployment, key: str) -> dict[str, Any]:
    """The ACL and content type local storage keeps for an object."""
    path = kvs.data_dir / "buckets" / ".meta" / BUCKET / f"{key}.json"
    return dict(json.loads(path.read_text()))


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(kvs: Deployment, media_dir: Path) -> tuple[Path, str]:
    local = make_video(media_dir / "snap", "testsrc", seconds=SECONDS, audio=False, rate=RATE)
    return local, kvs.upload(local, "in/snap/testsrc.mp4")


@pytest.fixture(scope="module")
def frames(clip: tuple[Path, str]) -> Frames:
    decoded = decode(clip[0])
    assert len(decoded) == RATE * SECONDS
    return decoded


# -- accuracy -------------------------------------------------------------------------------

#: (Param ss, ExtParam ss, the time they mean): on a frame, between two frames, the clock
#: form (ExtParam winning over Param), after the last frame (3.96 s) but before the end (4 s).
POINTS: list[tuple[Any, Any, float]] = [
    (None, None, 0.0),
    ("1", None, 1.0),
    (None, 1.02, 1.02),
    ("3", "00:00:02.345", 2.345),
    (None, "3.99", 3.99),
]


def test_png_snapshots_are_the_frame_on_screen_at_ss(
    kvs: Deployment, clip: tuple[Path, str], frames: Frames
) -> None:
    local, src = clip
    tasks = []
    for n, (param_ss, ext_ss, seconds) in enumerate(POINTS):
        param = {"f": "png"} | ({"ss": param_ss} if param_ss is not None else {})
        ext = {"ss": ext_ss} if ext_ss is not None else {}
        key = f"out/snap/at-{n}.png"
        name = preset(kvs, "avsnapshot", param)
        task_id = create(kvs, name, src, DstObjectKey=key, ExtParam=ext)
        tasks.append((task_id, key, seconds))
    for task_id, key, seconds in tasks:
        succeeded(kvs, task_id)
        picture = image(stored(kvs, key))
        expected = frame_index(seconds)
        assert np.array_equal(picture, frames[expected]), (seconds, nearest(frames, picture))
        # ffmpeg's own accurate seek (the first frame at or after ss) is within one frame.
        reference = decode(local, before=["-ss", f"{seconds:.3f}"], after=["-frames:v", "1"])
        if len(reference):
            assert abs(nearest(frames, reference[0])[0] - expected) <= 1
        else:  # after the last frame: ffmpeg finds nothing, the snapshot is the last frame
            assert expected == len(frames) - 1


def test_jpg_snapshot_is_within_one_frame_and_calls_back(
    kvs: Deployment, clip: tuple[Path, str], frames: Frames, tmp_path: Path
) -> None:
    name = preset(kvs, "avsnapshot", {"ss": "2.5"})  # f defaults to jpg
    with CallbackReceiver() as receiver:
        task_id = create(kvs, name, clip[1], DstObjectKey="out/snap/cb.jpg", CbUrl=receiver.url)
        [callback] = receiver.wait_for(1, timeout=60)
    assert callback.json == {
        "TaskID": task_id,
        "Status": 3,
        "Type": "avsnapshot",
        "Details": {
            "errnum": 0,
            "errmsg": "success",
            "bucket": BUCKET,
            "snapshotNum": 1,
            "items": [{"dstpath": "out/snap/cb.jpg"}],
        },
    }
    written = kvs.download("out/snap/cb.jpg", tmp_path / "cb.jpg")
    assert probe(written)["streams"][0]["codec_name"] == "mjpeg"
    index, diff = nearest(frames, image(written))
    assert abs(index - frame_index(2.5)) <= 1 and diff < 4
    assert meta(kvs, "out/snap/cb.jpg") == {"acl": "public-read", "content_type": "image/jpeg"}

    info = succeeded(kvs, task_id)
    stored = str(kvs.data_dir / "buckets" / BUCKET / "in" / "snap" / "testsrc.mp4")
    assert info["Command"].startswith("ffmpeg ") and stored in info["Command"]
    assert "openkvs-source-" not in info["Command"] and "-ss" in info["Command"]


# -- sizes, rotation, formats ---------------------------------------------------------------


def test_sizes_keep_the_aspect_ratio_and_formats_follow_f(
    kvs: Deployment, clip: tuple[Path, str]
) -> None:
    cases = [
        ({"width": 100}, (100, 75), "jpg", "mjpeg"),
        ({"height": 61, "f": "webp"}, (81, 61), "webp", "webp"),
        ({"shortSide": 120, "f": "png"}, (160, 120), "png", "png"),
        ({"width": 50, "height": 90, "f": "png"}, (50, 90), "png", "png"),
    ]
    tasks = []
    for n, (param, _size, ext, _codec) in enumerate(cases):
        key = f"out/snap/size-{n}.{ext}"
        name = preset(kvs, "avsnapshot", {"ss": 1, **param})
        tasks.append((create(kvs, name, clip[1], DstObjectKey=key, DstAcl="private"), key))
    for (task_id, key), (_param, size, _ext, codec) in zip(tasks, cases, strict=True):
        succeeded(kvs, task_id)
        stream = probe(stored(kvs, key))["streams"][0]
        assert (stream["width"], stream["height"], stream["codec_name"]) == (*size, codec)
        assert meta(kvs, key)["acl"] == "private"
    assert meta(kvs, "out/snap/size-1.webp")["content_type"] == "image/webp"


def test_rotated_sources_give_upright_images(
    kvs: Deployment, clip: tuple[Path, str], frames: Frames, tmp_path: Path
) -> None:
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(clip[0]), "-c", "copy",
         "-metadata:s:v:0", "rotate=90", str(rotated)],
        check=True, timeout=60,
    )  # fmt: skip
    src = kvs.upload(rotated, "in/snap/rotated.mp4")
    full = create(kvs, preset(kvs, "avsnapshot", {"f": "png", "ss": 2}), src,
                  DstObjectKey="out/snap/rot.png")  # fmt: skip
    short = create(kvs, preset(kvs, "avsnapshot", {"shortSide": 60}), src,
                   DstObjectKey="out/snap/rot-small.jpg")  # fmt: skip
    succeeded(kvs, full)
    picture = image(stored(kvs, "out/snap/rot.png"))
    # The display matrix says a quarter turn counterclockwise (ffprobe's "rotation": 90).
    [side] = probe(rotated)["streams"][0]["side_data_list"]
    assert side["rotation"] == 90
    assert np.array_equal(picture, np.rot90(frames[frame_index(2)], k=1))
    assert not np.array_equal(picture, np.rot90(frames[frame_index(2)], k=-1))
    succeeded(kvs, short)
    stream = probe(stored(kvs, "out/snap/rot-small.jpg"))["streams"][0]
    assert (stream["width"], stream["height"]) == (60, 80)


# -- failures -------------------------------------------------------------------------------


def test_ss_past_the_end_fails_with_2337(kvs: Deployment, clip: tuple[Path, str]) -> None:
    name = preset(kvs, "avsnapshot", {})
    with CallbackReceiver() as receiver:
        task_id = create(kvs, name, clip[1], DstObjectKey="out/snap/late.jpg",
                         ExtParam={"ss": SECONDS}, CbUrl=receiver.url)  # fmt: skip
        [callback] = receiver.wait_for(1, timeout=60)
    assert callback.json == {
        "TaskID": task_id,
        "Status": 4,
        "Type": "avsnapshot",
        "Details": {
            "errnum": 2337,
            "errmsg": "snapshot seek time maybe out of video duration",
            "bucket": BUCKET,
            "items": [],
        },
    }
    info = kvs.wait_task(task_id)
    assert (info["TaskStatus"], info["ErrorCode"]) == ("fail", "2337")


def test_audio_only_source_fails_with_3155(kvs: Deployment, media_dir: Path) -> None:
    src = kvs.upload(make_audio(media_dir / "snap", "tone", fmt="mp3", seconds=2), "in/snap/a.mp3")
    task_id = create(kvs, preset(kvs, "avsnapshot", {}), src, DstObjectKey="out/snap/a.jpg")
    info = kvs.wait_task(task_id)
    assert (info["TaskStatus"], info["ErrorCode"], info["ErrorMsg"]) == (
        "fail",
        "3155",
        "Trans Internal Error: Stream not found",
    )


@pytest.mark.parametrize(
    ("changes", "code", "words"),
    [
        ({"ExtParam": json.dumps({"ss": "later"})}, 1018, "ExtParam ss must be seconds"),
        ({"ExtParam": json.dumps({"ss": -2})}, 1018, "ExtParam ss"),
        ({"two_sources": True}, 1015, "avsnapshot tasks take one source"),
    ],
)
def test_create_task_refusals(
    kvs: Deployment, clip: tuple[Path, str], changes: dict[str, Any], code: int, words: str
) -> None:
    body: dict[str, Any] = {
        "Preset": preset(kvs, "avsnapshot", {}),
        "SrcInfo": [{"path": clip[1]}] * (2 if changes.pop("two_sources", False) else 1),
        "DstBucket": BUCKET,
        "DstObjectKey": "out/snap/never.jpg",
        **changes,
    }
    reply = kvs.client.create_task(**body)
    assert reply["ErrNum"] == code and words in reply["ErrMsg"], reply
