"""Malformed input never gets a 500, a hang or a gateway error: every action answers each
odd value with HTTP 200 and a documented ``ErrNum``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tests.integration.conftest import Deployment

from openkvs.api.actions import ACTIONS
from openkvs.errors import API_MESSAGES

PARAMS = [
    "Preset",
    "PresetType",
    "Param",
    "Description",
    "Kshd",
    "WithDetail",
    "Presets",
    "SrcInfo",
    "DstBucket",
    "DstObjectKey",
    "DstDir",
    "DstAcl",
    "Pipeline",
    "IsTop",
    "CbUrl",
    "CbMethod",
    "ExtParam",
    "points",
    "TaskID",
    "StartDate",
    "EndDate",
    "StartTime",
    "EndTime",
    "Marker",
    "Limit",
    "ErrorCode",
    "TaskStatus",
    "SrcPath",
    "PipelineName",
    "State",
    "RegularStart",
    "RegularDuration",
    "Quota",
    "StartUnixTime",
    "EndUnixTime",
    "Granularity",
    "ResultType",
    "ProcessTaskId",
]
ODD: list[Any] = [
    None,
    True,
    -1,
    10**30,
    1.5,
    "",
    "\x00../..",
    "x" * 3000,
    [],
    [None],
    {},
    {"path": 5},
    "中文",
]


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_answers_odd_values_with_a_code(kvs: Deployment, action: str) -> None:
    with httpx.Client(trust_env=False, timeout=30) as http:
        for name in PARAMS:
            for value in ODD:
                body = json.dumps({name: value}).encode()
                url = kvs.presigned("POST", f"Action={action}", body)
                reply = http.post(url, content=body, headers={"Content-Type": "application/json"})
                where = f"{action} {name}={value!r}"
                assert reply.status_code == 200, f"{where}: {reply.status_code} {reply.text}"
                answer = reply.json()
                assert answer["ErrNum"] in API_MESSAGES, f"{where}: {answer}"


def test_bodies_that_are_not_json_objects(kvs: Deployment) -> None:
    with httpx.Client(trust_env=False, timeout=30) as http:
        for body in (b"[1]", b"{", b"\xff\xfe", b"null", b'"text"'):
            url = kvs.presigned("POST", "Action=CreateTask", body)
            reply = http.post(url, content=body)
            assert reply.status_code == 200 and reply.json()["ErrNum"] == 1001, body
