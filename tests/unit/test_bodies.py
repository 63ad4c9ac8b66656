"""Golden callback bodies (spec §5.4 b, e; §7.2)."""

from __future__ import annotations

from openkvs.notify.bodies import completion_body

TASK = "c0ffee00d15ea5e0b0a710ad5eed1e5520240315"


def test_wave_success_body() -> None:
    assert completion_body(
        task_id=TASK,
        task_type="audiowave",
        bucket="media-out",
        error_code=0,
        items=[{"dstpath": "podcasts/ep42.wave.json"}],
    ) == {
        "TaskID": TASK,
        "Status": 3,
        "Type": "audiowave",
        "Details": {
            "errnum": 0,
            "errmsg": "success",
            "bucket": "media-out",
            "items": [{"dstpath": "podcasts/ep42.wave.json"}],
        },
    }


def test_failure_body_has_verbatim_message_and_no_items() -> None:
    body = completion_body(
        task_id=TASK,
        task_type="audiowave",
        bucket="media-out",
        error_code=3150,
        items=[{"dstpath": "x"}],
    )
    assert body == {
        "TaskID": TASK,
        "Status": 4,
        "Type": "audiowave",
        "Details": {
            "errnum": 3150,
            "errmsg": "Trans Internal Error: Invalid data found when processing input",
            "bucket": "media-out",
            "items": [],
        },
    }


def test_2058_message() -> None:
    body = completion_body(
        task_id=TASK, task_type="audiowave", bucket="b", error_code=2058, items=None
    )
    assert body["Details"]["errmsg"] == "sniffer result has AV headers but no audio and video data"


def test_avinfo_body_names_no_bucket() -> None:
    body = completion_body(
        task_id=TASK,
        task_type="avinfo",
        bucket="media",
        error_code=0,
        items=[{"dstpath": "", "metainfo": "{}"}],
    )
    assert body["Details"] == {
        "errnum": 0,
        "errmsg": "success",
        "bucket": "",
        "items": [{"dstpath": "", "metainfo": "{}"}],
    }


def test_images_are_counted_and_progress_fields_only_when_asked() -> None:
    items = [{"dstpath": f"shots/{n}.jpg"} for n in range(3)]
    body = completion_body(
        task_id="t", task_type="avsample", bucket="out", error_code=0, items=items
    )
    assert body["Details"] == {
        "errnum": 0,
        "errmsg": "success",
        "bucket": "out",
        "snapshotNum": 3,
        "items": items,
    }
    asked = completion_body(
        task_id="t",
        task_type="avtrans",
        bucket="out",
        error_code=0,
        items=[{"dstpath": "a.mp4"}],
        with_progress=True,
    )
    assert list(asked["Details"]) == ["errnum", "errmsg", "bucket", "status", "progress", "items"]
    assert (asked["Details"]["status"], asked["Details"]["progress"]) == ("", 0)
    failed = completion_body(
        task_id="t", task_type="avsnapshot", bucket="out", error_code=2337, items=None
    )
    assert "snapshotNum" not in failed["Details"]
    assert failed["Details"]["errmsg"] == "snapshot seek time maybe out of video duration"


def test_callback_items_leave_out_what_only_the_stored_result_keeps() -> None:
    stored = {"dstpath": "out.mp4", "segmentlisttype": "", "outMediainfo": "{}"}
    measured = {"Input": {"I": -30.1}, "Output": {"I": -16.0}}
    body = completion_body(
        task_id=TASK,
        task_type="avtrans",
        bucket="media-out",
        error_code=0,
        items=[{**stored, "loudness": measured}],
    )
    assert body["Details"]["items"] == [stored]
