"""Golden legacy completion callbacks: the lower-case first level (spec §5.7) and the
KS3-compatibility ``itmes`` list (§5.5), built from the seed's examples."""

from __future__ import annotations

import json
from typing import Any

from openkvs.notify.bodies import (
    CallbackStyle,
    completion_body,
    completion_body_for,
    ks3_items,
    styled_completion_body,
    url_safe_b64,
)

TASK = "0c33c9c372ff87fe197cb0dcf236e18d20161223"
LOWER = CallbackStyle(lowercase=True)
KS3 = CallbackStyle(ks3_items=True)
BOTH = CallbackStyle(lowercase=True, ks3_items=True)
AVINFO_ITEM = {"dstpath": "", "metainfo": '{"streams":[],"format":{}}'}
MP4_ITEM = {"dstpath": "m3u8/test/shouyin1.mp4", "outMediainfo": "{}"}


def _body(task_type: str, code: int = 0, items: list[dict[str, Any]] | None = None, **kw: Any):
    return completion_body(
        task_id=TASK,
        task_type=task_type,
        bucket=kw.pop("bucket", "wangshuai9"),
        error_code=code,
        items=items,
        **kw,
    )


def test_url_safe_base64_without_padding() -> None:
    assert url_safe_b64("m3u8/test/shouyin1.mp4") == "bTN1OC90ZXN0L3Nob3V5aW4xLm1wNA"
    assert url_safe_b64("???") == "Pz8_"  # the "-"/"_" alphabet, not "+"/"/"
    assert url_safe_b64("?>>") == "Pz4-"


def test_default_style_is_the_body_itself() -> None:
    body = _body("avinfo", items=[AVINFO_ITEM])
    assert styled_completion_body(body, CallbackStyle(), preset_type="avinfo") is body
    assert completion_body_for(body, {"preset": {"type": "avinfo"}}) is body


def test_avinfo_ks3_items_matches_the_seed() -> None:
    body = styled_completion_body(_body("avinfo", items=[AVINFO_ITEM]), KS3, preset_type="avinfo")
    # The seed's avinfo example, key for key and in its order.
    assert list(body) == ["TaskID", "Status", "Type", "itmes", "Details"]
    assert body["itmes"] == [{"cmd": "tag=avinfo", "desc": "success", "keys": [""], "code": 3}]
    assert body["Details"] == {
        "errnum": 0,
        "errmsg": "success",
        "bucket": "",
        "items": [AVINFO_ITEM],
    }


def test_avinfo_failure_ks3_items() -> None:
    body = styled_completion_body(_body("avinfo", 3164), KS3, preset_type="avinfo")
    assert body["Status"] == 4
    assert body["itmes"] == [
        {
            "cmd": "tag=avinfo",
            "desc": "Trans Internal Error: Http Request 404 Not Found",
            "keys": [""],
            "code": 4,
        }
    ]


def test_avop_preset_gets_saveas_command_as_in_the_seed() -> None:
    # The seed's transcode example: Type avtrans, made by an avop preset, with tag=avop.
    plain = _body("avtrans", items=[MP4_ITEM])
    body = completion_body_for(
        plain,
        {
            "preset": {"name": "p", "type": "avop", "param": {}},
            "DstObjectKey": "m3u8/test/shouyin1.mp4",
            "callback_style": KS3.as_request(),
        },
    )
    assert body == {
        "TaskID": TASK,
        "Status": 3,
        "Type": "avtrans",
        "itmes": [
            {
                "cmd": "tag=avop|tag=saveas&bucket=wangshuai9"
                "&object=bTN1OC90ZXN0L3Nob3V5aW4xLm1wNA",
                "desc": "success",
                "keys": ["m3u8/test/shouyin1.mp4"],
                "code": 3,
            }
        ],
        "Details": plain["Details"],
    }


def test_avtrans_preset_never_gets_itmes() -> None:
    plain = _body("avtrans", items=[MP4_ITEM])
    assert ks3_items(plain, preset_type="avtrans") is None
    body = styled_completion_body(plain, KS3, preset_type="avtrans", output_key="x.mp4")
    assert body == plain and "itmes" not in body
    lower = styled_completion_body(plain, BOTH, preset_type="avtrans", output_key="x.mp4")
    assert list(lower) == ["taskid", "status", "type", "details"]


def test_avsnapshot_success_and_failure_ks3_items() -> None:
    shots = [{"dstpath": "shots/a-1.jpg"}, {"dstpath": "shots/a-2.jpg"}]
    ok = styled_completion_body(
        _body("avsnapshot", items=shots), KS3, preset_type="avsnapshot", output_key="shots/a.jpg"
    )
    assert ok["itmes"] == [
        {
            "cmd": "tag=avsnapshot|tag=saveas&bucket=wangshuai9&object=c2hvdHMvYS5qcGc",
            "desc": "success",
            "keys": ["shots/a-1.jpg", "shots/a-2.jpg"],
            "code": 3,
        }
    ]
    assert ok["Details"]["snapshotNum"] == 2
    failed = styled_completion_body(
        _body("avsnapshot", 3164, items=shots),
        KS3,
        preset_type="avsnapshot",
        output_key="shots/a.jpg",
    )
    assert failed["itmes"] == [
        {
            "cmd": "tag=avsnapshot|tag=saveas&bucket=wangshuai9&object=c2hvdHMvYS5qcGc",
            "desc": "Trans Internal Error: Http Request 404 Not Found",
            "keys": [],
            "code": 4,
        }
    ]


def test_lowercase_success_keeps_inner_keys() -> None:
    plain = _body("avsnapshot", items=[{"dstpath": "s.jpg"}], with_progress=True)
    body = styled_completion_body(plain, LOWER, preset_type="avsnapshot")
    assert body == {"taskid": TASK, "status": 3, "type": "avsnapshot", "details": plain["Details"]}
    assert set(body["details"]) == {
        "errnum", "errmsg", "bucket", "snapshotNum", "status", "progress", "items",
    }  # fmt: skip
    assert "taskId" not in json.dumps(body)  # the seed's camel case is not emitted (Q-C3)


def test_lowercase_failure() -> None:
    body = styled_completion_body(_body("avinfo", 3164), LOWER, preset_type="avinfo")
    assert body == {
        "taskid": TASK,
        "status": 4,
        "type": "avinfo",
        "details": {
            "errnum": 3164,
            "errmsg": "Trans Internal Error: Http Request 404 Not Found",
            "bucket": "",
            "items": [],
        },
    }


def test_lowercase_reports_legacy_type_names() -> None:
    for legacy in ("avop", "avm3u8"):
        body = styled_completion_body(_body("avtrans", items=[MP4_ITEM]), LOWER, preset_type=legacy)
        assert body["type"] == legacy
    logo = styled_completion_body(_body("avlogo", items=[MP4_ITEM]), LOWER, preset_type="avlogo")
    assert logo["type"] == "avlogo"
    # The ordinary CamelCase body keeps the kind's name.
    assert styled_completion_body(_body("avtrans"), KS3, preset_type="avm3u8")["Type"] == "avtrans"
    # A modern preset type is reported as is.
    assert (
        styled_completion_body(_body("avtrans"), LOWER, preset_type="avtrans")["type"] == "avtrans"
    )


def test_both_on_lowercase_first_level_plus_itmes() -> None:
    plain = _body("avtrans", items=[MP4_ITEM])
    body = completion_body_for(
        plain,
        {
            "preset": {"name": "p", "type": "avm3u8", "param": {}},
            "DstObjectKey": "m3u8/test/shouyin1.mp4",
            "callback_style": BOTH.as_request(),
        },
    )
    assert list(body) == ["taskid", "status", "type", "itmes", "details"]
    assert body["type"] == "avm3u8"
    assert body["itmes"][0]["cmd"].startswith("tag=avm3u8|tag=saveas&bucket=wangshuai9&object=")
    assert body["details"] == plain["Details"]


def test_style_from_request() -> None:
    assert CallbackStyle.from_request({}) == CallbackStyle()
    assert CallbackStyle.from_request({"callback_style": "junk"}) == CallbackStyle()
    assert CallbackStyle.from_request({"callback_style": BOTH.as_request()}) == BOTH
    # A task without a preset snapshot (CreateWaveTask) uses its own type.
    wave = _body("audiowave", items=[{"dstpath": "w.json"}])
    body = completion_body_for(wave, {"DstObjectKey": "w.json", "callback_style": KS3.as_request()})
    assert body["itmes"][0]["cmd"] == "tag=audiowave|tag=saveas&bucket=wangshuai9&object=dy5qc29u"
