"""Statistics computed from finished tasks as the store records them."""

from __future__ import annotations

import json

from openkvs.model import TaskRecord, TaskStatus
from openkvs.service.stats import images_of, output_seconds


def _task(task_type: str, items: list[dict[str, str]], vcodec: str = "h264") -> TaskRecord:
    return TaskRecord(
        task_id="t" * 40,
        user_id=1,
        action="CreateTask",
        task_type=task_type,
        preset="p",
        pipeline="usual",
        is_top=False,
        status=TaskStatus.SUCC,
        request={"preset": {"param": {"f": "mp4", "VIDEO": {"vcodec": vcodec}}}},
        result=items,
    )


def _out(
    duration: str, width: int | None = None, height: int | None = None, codec: str = "h264"
) -> dict[str, str]:
    streams = [{"index": 1, "codec_type": "audio", "codec_name": "aac"}]
    if width is not None:
        streams.insert(
            0,
            {
                "index": 0,
                "codec_type": "video",
                "codec_name": codec,
                "width": width,
                "height": height,
            },
        )
    info = {"metadata": {}, "streams": streams, "format": {"duration": duration}}
    return {"dstpath": "x", "outMediainfo": json.dumps(info)}


def test_output_seconds_classifies_codec_and_resolution() -> None:
    task = _task(
        "avtrans",
        [
            _out("600.4", 1280, 720),
            _out("59.6", 3840, 2160, "hevc"),
            _out("30.0"),
            {"dstpath": "broken", "outMediainfo": "{"},
        ],
    )
    assert output_seconds(task) == [("h264", "720P", 600), ("h265", "4K", 60), ("audio", None, 30)]
    remux = _task("avtrans", [_out("10", 640, 360)], vcodec="copy")
    assert output_seconds(remux) == [("copy", "480P", 10)]


def test_images_of() -> None:
    assert images_of(_task("avsnapshot", [{"dstpath": "a.jpg"}])) == 1
    assert images_of(_task("avsample", [{"dstpath": f"{n}.jpg"} for n in range(7)])) == 7
