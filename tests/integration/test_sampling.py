"""``avsample`` end to end (the official SDK against ``openkvs serve``): the count rule, the
images' times, sprite sheets, the WebVTT thumbnail track and the callback body.

The rule under test (docs/images.md): images at ``start + k·interval`` for every k ≥ 0 with
``start + k·interval < end``, ``end`` = the earlier of ``start + duration`` and the end of
the video; image k is the frame on screen at its time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.integration.test_snapshots import (
    Frames,
    create,
    decode,
    frame_index,
    image,
    meta,
    nearest,
    preset,
    stored,
    succeeded,
)
from tests.support.media import SampleMediaUnavailable, make_video, probe, sample_videos
from tests.support.receiver import CallbackReceiver
from tests.unit.test_sprite_layout import parse_track

RATE = 25
SECONDS = 5


@pytest.fixture(scope="module")
def clip(kvs: Deployment, media_dir: Path) -> tuple[Path, str]:
    local = make_video(media_dir / "sample", "testsrc", seconds=SECONDS, audio=False, rate=RATE)
    return local, kvs.upload(local, "in/sample/testsrc.mp4")


@pytest.fixture(scope="module")
def frames(clip: tuple[Path, str]) -> Frames:
    return decode(clip[0])


def expected_times(
    start: float, duration: float | None, interval: float, length: float
) -> list[float]:
    """The documented rule, computed here independently of the service."""
    end = length if duration is None else min(length, start + duration)
    count = max(0, math.ceil(round((end - start) / interval, 6)))
    return [start + k * interval for k in range(count)]


#: (Param, ExtParam, the start and duration they mean): the start from ExtParam (winning
#: over Param) or Param, the end from ExtParam duration or the end of the video.
CASES: list[tuple[dict[str, Any], dict[str, Any], float, float | None]] = [
    ({"interval": 1}, {}, 0.0, None),
    ({"interval": 2}, {"ss": 0.5}, 0.5, None),
    ({"interval": 1}, {"ss": "00:00:01.000", "duration": 2}, 1.0, 2.0),
    ({"interval": 1}, {"duration": "2.5"}, 0.0, 2.5),
    ({"interval": 7}, {}, 0.0, None),
    ({"interval": 1, "ss": 3.5}, {}, 3.5, None),
    ({"interval": 1, "ss": 4}, {"ss": 0.2, "duration": 30}, 0.2, 30.0),
]


def test_counts_names_and_frames_follow_the_rule(
    kvs: Deployment, clip: tuple[Path, str], frames: Frames
) -> None:
    tasks = {}
    with CallbackReceiver() as receiver:
        for n, (param, ext, start, duration) in enumerate(CASES):
            name = preset(kvs, "avsample", {"f": "png", **param})
            task_id = create(kvs, name, clip[1], DstDir=f"out/sample/count-{n}/", ExtParam=ext,
                             CbUrl=receiver.url)  # fmt: skip
            tasks[task_id] = (n, expected_times(start, duration, param["interval"], SECONDS))
        callbacks = receiver.wait_for(len(CASES), timeout=120)
    assert sorted(c.json["TaskID"] for c in callbacks) == sorted(tasks)
    for callback in callbacks:
        n, times = tasks[callback.json["TaskID"]]
        details = callback.json["Details"]
        keys = [f"out/sample/count-{n}/{k}.png" for k in range(len(times))]
        assert details["snapshotNum"] == len(times) > 0, (n, details)
        assert details["items"] == [{"dstpath": key} for key in keys]
        for key, seconds in zip(keys, times, strict=True):
            picture = image(stored(kvs, key))
            expected = frames[frame_index(seconds, RATE, len(frames))]
            assert np.array_equal(picture, expected), (n, key, nearest(frames, picture))
        beyond = kvs.data_dir / "buckets" / BUCKET / f"out/sample/count-{n}/{len(times)}.png"
        assert not beyond.exists()
        # One ffmpeg run made all the images.
        command = succeeded(kvs, callback.json["TaskID"])["Command"]
        assert command.startswith("ffmpeg ") and " && " not in command


def test_callback_carries_snapshot_num_and_one_item_per_image(
    kvs: Deployment, clip: tuple[Path, str]
) -> None:
    name = preset(kvs, "avsample", {"interval": 2})
    with CallbackReceiver() as receiver:
        task_id = create(kvs, name, clip[1], DstDir="out/sample/cb", CbUrl=receiver.url)
        [callback] = receiver.wait_for(1, timeout=60)
    assert callback.json == {
        "TaskID": task_id,
        "Status": 3,
        "Type": "avsample",
        "Details": {
            "errnum": 0,
            "errmsg": "success",
            "bucket": BUCKET,
            "snapshotNum": 3,
            "items": [{"dstpath": f"out/sample/cb/{k}.jpg"} for k in range(3)],
        },
    }
    assert meta(kvs, "out/sample/cb/0.jpg") == {"acl": "public-read", "content_type": "image/jpeg"}


def _tile(sheet: np.ndarray, xywh: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = xywh
    return sheet[y : y + h, x : x + w]


def check_sprites(
    kvs: Deployment, prefix: str, item: dict[str, Any], images: int, *, grid: tuple[int, int],
    tile: tuple[int, int], start: float, interval: float, end: float, exact: bool,
) -> None:  # fmt: skip
    """The sheets listed in ``thumbnailsinfo`` have the grid and tile size asked, the track
    addresses every image's tile once with its time, and each tile shows its image."""
    columns, rows = grid
    info = json.loads(item["thumbnailsinfo"])
    sheets = math.ceil(images / (columns * rows))
    assert [entry["fileindex"] for entry in info] == list(range(sheets))
    assert [entry["thumbnailpath"] for entry in info] == [
        f"{prefix}sprite/{n}.{Path(item['dstpath']).suffix[1:]}" for n in range(sheets)
    ]
    pictures = []
    for entry in info:
        path = stored(kvs, entry["thumbnailpath"])
        assert entry["filesize"] == path.stat().st_size
        stream = probe(path)["streams"][0]
        assert (stream["width"], stream["height"]) == (columns * tile[0], rows * tile[1])
        pictures.append(image(path))
    track_key = f"{prefix}sprite/thumbnails.vtt"
    assert meta(kvs, track_key)["content_type"] == "text/vtt; charset=utf-8"
    cues = parse_track(stored(kvs, track_key).read_text(encoding="utf-8"))
    assert len(cues) == images
    assert len({(sheet, xywh) for _a, _b, sheet, xywh in cues}) == images  # each tile once
    ext = Path(item["dstpath"]).suffix
    for k, (begin, stop, sheet_name, xywh) in enumerate(cues):
        assert begin == pytest.approx(start + k * interval, abs=0.0011)
        assert stop == pytest.approx(min(start + (k + 1) * interval, end), abs=0.0011)
        sheet = int(sheet_name.removesuffix(ext))
        assert xywh[2:] == tile
        assert (xywh[0] // tile[0], xywh[1] // tile[1]) == divmod(k % (columns * rows), columns)[
            ::-1
        ]
        piece = _tile(pictures[sheet], xywh)
        picture = image(stored(kvs, f"{prefix}{k}{ext}"))
        if exact:
            assert np.array_equal(piece, picture), k
        else:  # JPEG: the tile and the image are coded separately
            assert float(np.abs(piece.astype(np.int16) - picture).mean()) < 6, k
    unused = columns * rows * sheets - images
    if unused:  # the last sheet's empty tiles are black
        assert pictures[-1][-tile[1] :, -tile[0] :].max() < 30


def test_sprites_grid_tiles_and_thumbnail_track(kvs: Deployment, clip: tuple[Path, str]) -> None:
    param = {"f": "png", "interval": 1, "width": 64, "height": 48, "spriteflag": 1,
             "spritew": 2, "spriteh": 2}  # fmt: skip
    name = preset(kvs, "avsample", param)
    with CallbackReceiver() as receiver:
        slash = create(kvs, name, clip[1], DstDir="out/sample/sprites/", CbUrl=receiver.url,
                       ExtParam={"ss": 0.5})  # fmt: skip
        plain = create(kvs, name, clip[1], DstDir="out/sample/sprites2", ExtParam={"ss": 0.5})
        [callback] = receiver.wait_for(1, timeout=60)
    body = callback.json
    assert (body["TaskID"], body["Status"], body["Type"]) == (slash, 3, "avsample")
    details = body["Details"]
    assert (details["errnum"], details["errmsg"], details["bucket"]) == (0, "success", BUCKET)
    assert details["snapshotNum"] == len(details["items"]) == 5  # 0.5, 1.5, ... 4.5
    first, *rest = details["items"]
    assert set(first) == {"dstpath", "thumbnailsinfo"} and all(set(i) == {"dstpath"} for i in rest)
    assert [i["dstpath"] for i in details["items"]] == [
        f"out/sample/sprites/{k}.png" for k in range(5)
    ]
    check_sprites(kvs, "out/sample/sprites/", first, 5, grid=(2, 2), tile=(64, 48),
                  start=0.5, interval=1, end=SECONDS, exact=True)  # fmt: skip
    assert meta(kvs, "out/sample/sprites/sprite/0.png")["content_type"] == "image/png"
    # "out/sample/sprites2" (no slash) names the same layout.
    succeeded(kvs, plain)
    for key in ("0.png", "4.png", "sprite/0.png", "sprite/1.png", "sprite/thumbnails.vtt"):
        assert stored(kvs, f"out/sample/sprites2/{key}").is_file()


@pytest.mark.parametrize(
    ("changes", "code", "words"),
    [
        ({"ExtParam": json.dumps({"duration": 0})}, 1018, "ExtParam duration must be greater"),
        ({"ExtParam": json.dumps({"duration": "long"})}, 1018, "ExtParam duration must be"),
        ({"SrcInfo": "two"}, 1015, "avsample tasks take one source"),
        ({"DstDir": None}, 1020, "DstDir is required"),
    ],
)
def test_create_task_refusals(
    kvs: Deployment, clip: tuple[Path, str], changes: dict[str, Any], code: int, words: str
) -> None:
    body: dict[str, Any] = {
        "Preset": preset(kvs, "avsample", {}),
        "SrcInfo": [{"path": clip[1]}],
        "DstBucket": BUCKET,
        "DstDir": "out/sample/never/",
        **changes,
    }
    if body["SrcInfo"] == "two":
        body["SrcInfo"] = [{"path": clip[1]}, {"path": clip[1]}]
    reply = kvs.client.create_task(**{k: v for k, v in body.items() if v is not None})
    assert reply["ErrNum"] == code and words in reply["ErrMsg"], reply


def test_start_past_the_end_fails_with_2337(kvs: Deployment, clip: tuple[Path, str]) -> None:
    task_id = create(kvs, preset(kvs, "avsample", {}), clip[1], DstDir="out/sample/late",
                     ExtParam={"ss": SECONDS + 1})  # fmt: skip
    info = kvs.wait_task(task_id)
    assert (info["TaskStatus"], info["ErrorCode"]) == ("fail", "2337")
    assert not (kvs.data_dir / "buckets" / BUCKET / "out/sample/late").exists()


@pytest.mark.slow
def test_a_real_recording(kvs: Deployment, tmp_path: Path) -> None:
    """bikes.mp4 (640x272, 10 s, real camera footage): images every 2 s with sprites."""
    try:
        local = next(p for p in sample_videos() if p.name == "bikes.mp4")
    except SampleMediaUnavailable as exc:
        pytest.skip(str(exc))
    src = kvs.upload(local, "in/sample/bikes.mp4")
    video = next(s for s in probe(local)["streams"] if s["codec_type"] == "video")
    length = float(video["duration"])
    times = expected_times(0, None, 2, length)
    param = {"interval": 2, "width": 160, "spriteflag": 1, "spritew": 3, "spriteh": 2}
    with CallbackReceiver() as receiver:
        task_id = create(kvs, preset(kvs, "avsample", param), src, DstDir="out/sample/bikes",
                         CbUrl=receiver.url)  # fmt: skip
        [callback] = receiver.wait_for(1, timeout=120)
    details = callback.json["Details"]
    assert (callback.json["Status"], details["snapshotNum"]) == (3, len(times)), callback.json
    first = details["items"][0]
    check_sprites(kvs, "out/sample/bikes/", first, len(times), grid=(3, 2), tile=(160, 68),
                  start=0, interval=2, end=length, exact=False)  # fmt: skip
    reference = decode(local, after=["-vf", "scale=160:68"], size=(160, 68))
    rate = float(np.divide(*map(float, video["avg_frame_rate"].split("/"))))
    for k, seconds in enumerate(times):
        picture = image(kvs.download(f"out/sample/bikes/{k}.jpg", tmp_path / f"{k}.jpg"))
        index, diff = nearest(reference, picture)
        assert abs(index - frame_index(seconds, round(rate), len(reference))) <= 1 and diff < 8
    assert succeeded(kvs, task_id)["Command"].count("tile=3x2") == 1
