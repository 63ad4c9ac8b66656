"""Every CreateWaveTask error of spec §7.1 that openkvs produces, through the official SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.media import make_audio


@pytest.fixture(scope="module")
def source(kvs: Deployment, tmp_path_factory: pytest.TempPathFactory) -> str:
    local = make_audio(tmp_path_factory.mktemp("err"), "tone", fmt="mp3", seconds=1)
    return kvs.upload(local, "in/errors.mp3")


def _valid(source: str) -> dict[str, Any]:
    return {
        "Preset": "wave",
        "SrcInfo": [{"path": source}],
        "DstBucket": BUCKET,
        "DstObjectKey": "out/e.json",
        "points": 10,
    }


CASES: list[tuple[str, dict[str, Any], list[str], int]] = [
    # (name, changes, removed keys, expected ErrNum)
    ("no Preset", {}, ["Preset"], 1000),
    ("no SrcInfo", {}, ["SrcInfo"], 1000),
    ("no DstBucket", {}, ["DstBucket"], 1000),
    ("no DstObjectKey", {}, ["DstObjectKey"], 1000),
    ("no points", {}, ["points"], 1000),
    ("empty points", {"points": ""}, [], 1000),
    ("points 0", {"points": 0}, [], 1001),
    ("points negative", {"points": -5}, [], 1001),
    ("points 4096", {"points": 4096}, [], 1001),
    ("points text", {"points": "many"}, [], 1001),
    ("points fraction", {"points": 2.5}, [], 1001),
    ("bad DstAcl", {"DstAcl": "everyone"}, [], 1001),
    ("bad CbUrl", {"CbUrl": "ftp://example.org/x"}, [], 1001),
    ("upper-case preset", {"Preset": "Wave"}, [], 1005),
    ("other preset", {"Preset": "avinfo_default"}, [], 1005),
    ("missing bucket", {"DstBucket": "no-such-bucket"}, [], 1011),
    ("invalid bucket", {"DstBucket": "Bad_Bucket"}, [], 1011),
    ("missing source bucket", {"SrcInfo": [{"path": "/no-such-bucket/a.mp3"}]}, [], 1011),
    ("dot-dot key", {"DstObjectKey": "../escape.json"}, [], 1014),
    ("absolute key", {"DstObjectKey": "/etc/passwd"}, [], 1014),
    ("NUL key", {"DstObjectKey": "a\x00b.json"}, [], 1014),
    ("backslash key", {"DstObjectKey": "a\\..\\b.json"}, [], 1014),
    ("dot-dot source", {"SrcInfo": [{"path": f"/{BUCKET}/../../etc/passwd"}]}, [], 1014),
    ("SrcInfo string", {"SrcInfo": "/media/in/errors.mp3"}, [], 1016),
    ("SrcInfo empty", {"SrcInfo": []}, [], 1016),
    ("SrcInfo without path", {"SrcInfo": [{"type": "audio"}]}, [], 1016),
    ("SrcInfo relative path", {"SrcInfo": [{"path": "media/in/errors.mp3"}]}, [], 1016),
    ("missing source", {"SrcInfo": [{"path": f"/{BUCKET}/in/nothing.mp3"}]}, [], 1210),
    ("long path", {"SrcInfo": [{"path": f"/{BUCKET}/" + "a" * 1100}]}, [], 1213),
    ("bad ExtParam", {"ExtParam": "{not json"}, [], 1018),
]


@pytest.mark.parametrize(("name", "changes", "removed", "code"), CASES, ids=[c[0] for c in CASES])
def test_create_wave_task_errors(
    kvs: Deployment, source: str, name: str, changes: dict[str, Any], removed: list[str], code: int
) -> None:
    params = {**_valid(source), **changes}
    for key in removed:
        del params[key]
    reply = kvs.client.create_wave_task(**params)
    assert reply["ErrNum"] == code, reply
    assert reply["ErrMsg"] and "TaskID" not in reply


def test_every_listed_code_is_covered() -> None:
    assert {c[3] for c in CASES} >= {1000, 1001, 1005, 1011, 1014, 1016, 1210, 1213}


def test_valid_request_is_accepted(kvs: Deployment, source: str) -> None:
    reply = kvs.client.create_wave_task(**_valid(source))
    assert reply["ErrNum"] == 0 and len(reply["TaskID"]) == 40
    assert kvs.wait_task(reply["TaskID"])["TaskStatus"] == "succ"


def test_get_task_errors(kvs: Deployment, tmp_path: Path) -> None:
    client = kvs.client
    assert client.get_task_by_task_id(TaskID="short")["ErrNum"] == 1009
    assert client.get_task_by_task_id(TaskID="0" * 40)["ErrNum"] == 1200
    assert client.get_task_by_task_id(TaskID="")["ErrNum"] == 1000
