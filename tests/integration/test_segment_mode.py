"""Segment mode end to end (spec §3.5, §5.3.3, §5.4 c): a 7 s source cut every 2 s into mp4
files through the real server and the official SDK client. The completion callback's
``segmentsinfo`` matches the stored files (names, sizes, durations adding up to the
source's), every file decodes alone and starts with a keyframe, and the m3u8 list at
DstObjectKey names them in order."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment, deploy
from tests.support.media import make_video
from tests.support.receiver import CallbackReceiver

pytestmark = pytest.mark.slow

WAIT = 180.0


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy(tmp_path_factory.mktemp("segment-mode"))


def _duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip())


def _first_frame_is_key(path: Path) -> bool:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
         "-show_entries", "frame=key_frame", "-of", "csv=p=0", path],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()[0].strip(",") == "1"


def _completion(rx: CallbackReceiver, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while True:
        for request in rx.requests:
            body = request.json
            mine = isinstance(body, dict) and body.get("TaskID") == task_id
            if mine and body.get("Status") in (3, 4):
                return dict(body)
        assert time.monotonic() < deadline, f"no completion callback for {task_id}"
        time.sleep(0.1)


def test_segment_mode_mp4(site: Deployment, tmp_path: Path) -> None:
    source = make_video(tmp_path, "seven", seconds=7, size="160x120")
    src = site.upload(source, "seg-in/seven.mp4")
    param = {
        "f": "mp4",
        "segment_time": 2,
        "VIDEO": {"vcodec": "h264", "preset": "ultrafast"},
        "AUDIO": {"acodec": "aac"},
    }
    answer = site.client.preset(Preset="seg2", PresetType="avtrans", Param=param)
    assert answer["ErrNum"] in (0, 1201), answer
    with CallbackReceiver() as rx:
        answer = site.client.create_task(
            Preset="seg2",
            SrcInfo=[{"path": src}],
            DstBucket=BUCKET,
            DstObjectKey="ep7/parts/list.m3u8",
            CbUrl=rx.url,
            CbMethod="POST",
            ExtParam=json.dumps({"segment_filename": "part-%03d.mp4"}),
        )
        assert answer["ErrNum"] == 0, answer
        body = _completion(rx, str(answer["TaskID"]))
    assert body["Status"] == 3, body
    [item] = body["Details"]["items"]
    assert item["dstpath"] == "ep7/parts/list.m3u8"
    assert item["segmentlisttype"] == "m3u8"
    assert isinstance(item["segmentsinfo"], str)
    info = json.loads(item["segmentsinfo"])
    assert [entry["fileindex"] for entry in info] == list(range(len(info)))
    assert [entry["filename"] for entry in info] == [f"part-{n:03d}.mp4" for n in range(4)]
    assert abs(sum(float(e["duration"]) for e in info) - _duration(source)) <= 0.1, info
    folder = site.data_dir / "buckets" / BUCKET / "ep7" / "parts"
    for entry in info:
        stored = folder / entry["filename"]
        assert stored.stat().st_size == entry["filesize"]
        assert abs(_duration(stored) - float(entry["duration"])) < 0.001
        decoded = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", stored, "-f", "null", "-"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert decoded.returncode == 0 and decoded.stdout + decoded.stderr == "", decoded
        assert _first_frame_is_key(stored), entry
    listed = (folder / "list.m3u8").read_text()
    assert listed.startswith("#EXTM3U\n") and listed.rstrip().endswith("#EXT-X-ENDLIST")
    names = [line for line in listed.splitlines() if line and not line.startswith("#")]
    assert names == [entry["filename"] for entry in info]


def test_bad_segment_filename_is_1018(site: Deployment, tmp_path: Path) -> None:
    src = site.upload(make_video(tmp_path, "one", seconds=1, size="64x48"), "seg-in/one.mp4")
    param = {"f": "mp4", "segment_time": 2, "VIDEO": {"vcodec": "h264"}}
    answer = site.client.preset(Preset="seg2bad", PresetType="avtrans", Param=param)
    assert answer["ErrNum"] in (0, 1201), answer
    answer = site.client.create_task(
        Preset="seg2bad",
        SrcInfo=[{"path": src}],
        DstBucket=BUCKET,
        DstObjectKey="bad/list.m3u8",
        ExtParam=json.dumps({"segment_filename": "../part-%d.mp4"}),
    )
    assert answer["ErrNum"] == 1018, answer
