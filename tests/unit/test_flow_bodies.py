"""The flow callback (notify/flows.py) against the seed's example: key names, key order,
types, ``OutInfo`` lower-case keys with ``outMediainfo`` as JSON text; failures, skipped
items, image kinds, avinfo, and the legacy lower-case variant."""

from __future__ import annotations

import json
from typing import Any

from openkvs.errors import TASK_MESSAGES
from openkvs.notify.flows import flow_body, flow_callback

INFO_720 = json.dumps({"metadata": {}, "streams": [], "format": {"format_name": "mp4"}})
INFO_360 = json.dumps({"metadata": {}, "streams": [], "format": {"format_name": "flv"}})


def _result(order: int, code: int, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "Order": order,
        "Type": extra.pop("Type", "avtrans"),
        "Status": 3 if code == 0 else 4,
        "Errnum": code,
        "Errmsg": "" if code == 0 else TASK_MESSAGES[code],
        "Bucket": extra.pop("Bucket", "media-out"),
        "items": items,
        "PresetType": extra.pop("PresetType", "avtrans"),
        "Command": "ffmpeg ...",
        **extra,
    }


def _request(*types: str, lowercase: bool = False) -> dict[str, Any]:
    return {
        "FlowData": [
            {
                "Order": n,
                "Type": "avtrans",
                "Preset": f"p{n}",
                "request": {"DstBucket": "media-out", "preset": {"type": t}},
            }
            for n, t in enumerate(types)
        ],
        "callback_style": {"lowercase": lowercase, "ks3_items": False},
    }


SUCCEEDED = [
    _result(
        0,
        0,
        [
            {
                "dstpath": "ep7/720p.mp4",
                "segmentlisttype": "",
                "outMediainfo": INFO_720,
                "loudness": {"Input": {}},  # stored for GetTaskByTaskID only
            }
        ],
    ),
    _result(1, 0, [{"dstpath": "ep7/360p.flv", "segmentlisttype": "", "outMediainfo": INFO_360}]),
]


def test_two_succeeded_items_match_the_seed_example() -> None:
    body = flow_body(task_id="T", error_code=0, results=SUCCEEDED, request=_request("a", "a"))
    text = json.dumps(body)
    assert list(body) == ["TaskID", "Status", "Details"]  # no top-level Type
    assert body["Status"] == 3
    assert isinstance(body["Details"], list) and len(body["Details"]) == 2
    for n, element in enumerate(body["Details"]):
        assert list(element) == [
            "Order", "Type", "Status", "Errnum", "Errmsg", "Bucket", "OutInfo",
        ]  # fmt: skip
        assert element["Order"] == n and isinstance(element["Order"], int)
        assert element["Type"] == "avtrans"
        assert element["Status"] == 3 and element["Errnum"] == 0 and element["Errmsg"] == ""
        assert element["Bucket"] == "media-out"
        assert isinstance(element["OutInfo"]["outMediainfo"], str)  # JSON text, not an object
    assert body["Details"][0]["OutInfo"] == {
        "dstpath": "ep7/720p.mp4",
        "segmentlisttype": "",
        "outMediainfo": INFO_720,
    }
    assert "loudness" not in text and "Command" not in text and "PresetType" not in text
    assert json.loads(body["Details"][1]["OutInfo"]["outMediainfo"])["format"]["format_name"] == (
        "flv"
    )


def test_a_failed_item_skips_the_rest() -> None:
    results = [_result(0, 2041, []), _result(1, 2001, [])]
    body = flow_body(task_id="T", error_code=2041, results=results, request=_request("a", "a"))
    assert body == {
        "TaskID": "T",
        "Status": 4,
        "Details": [
            {
                "Order": 0,
                "Type": "avtrans",
                "Status": 4,
                "Errnum": 2041,
                "Errmsg": "file not exist",
                "Bucket": "media-out",
                "OutInfo": {},
            },
            {
                "Order": 1,
                "Type": "avtrans",
                "Status": 4,
                "Errnum": 2001,
                "Errmsg": "Unknown Error",
                "Bucket": "media-out",
                "OutInfo": {},
            },
        ],
    }


def test_image_and_info_items() -> None:
    sample = _result(
        0, 0, [{"dstpath": "s/0.jpg"}, {"dstpath": "s/1.jpg"}, {"dstpath": "s/2.jpg"}],
        Type="avsample",
    )  # fmt: skip
    info = _result(1, 0, [{"dstpath": "", "metainfo": "{}"}], Type="avinfo", Bucket="")
    body = flow_body(task_id="T", error_code=0, results=[sample, info], request=_request("a", "b"))
    assert body["Details"][0]["OutInfo"] == {"dstpath": "s/0.jpg", "snapshotNum": 3}
    assert body["Details"][1]["Bucket"] == ""
    assert body["Details"][1]["OutInfo"] == {"dstpath": "", "metainfo": "{}"}


def test_a_flow_that_failed_before_its_items_ran_reports_each_with_its_code() -> None:
    body = flow_body(task_id="T", error_code=2005, results=None, request=_request("avtrans", "x"))
    assert [e["Errnum"] for e in body["Details"]] == [2005, 2005]
    assert [e["Status"] for e in body["Details"]] == [4, 4]
    assert body["Details"][0]["Errmsg"] and body["Details"][0]["OutInfo"] == {}


def test_the_lower_case_variant_lowers_the_first_level_only() -> None:
    results = [dict(SUCCEEDED[0], PresetType="avop"), SUCCEEDED[1]]
    plain = flow_callback(task_id="T", error_code=0, results=results, request=_request("a", "a"))
    assert list(plain) == ["TaskID", "Status", "Details"]
    sent = flow_callback(
        task_id="T", error_code=0, results=results, request=_request("a", "a", lowercase=True)
    )
    assert list(sent) == ["taskid", "status", "details"]
    assert [e["Type"] for e in sent["details"]] == ["avop", "avtrans"]  # legacy type names
    assert list(sent["details"][0]) == list(plain["Details"][0])  # elements keep their keys
    assert "itmes" not in sent
