"""ExtParam ClientToken through the official SDK: a repeat returns the first TaskID."""

from __future__ import annotations

import json
import uuid

import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.media import make_audio


@pytest.fixture(scope="module")
def source(kvs: Deployment, tmp_path_factory: pytest.TempPathFactory) -> str:
    reply = kvs.client.preset(Preset="tok_info", PresetType="avinfo", Param={})
    assert reply["ErrNum"] in (0, 1201), reply
    local = make_audio(tmp_path_factory.mktemp("tok"), "tok", fmt="mp3", seconds=1)
    return kvs.upload(local, "in/tok.mp3")


def _create(kvs: Deployment, source: str, ext: dict[str, object]) -> dict[str, object]:
    return dict(
        kvs.client.create_task(
            Preset="tok_info",
            SrcInfo=[{"path": source}],
            DstBucket=BUCKET,
            ExtParam=json.dumps(ext),
        )
    )


def test_a_repeated_client_token_returns_the_same_task(kvs: Deployment, source: str) -> None:
    token = f"create-{uuid.uuid4()}"
    first = _create(kvs, source, {"ClientToken": token})
    assert first["ErrNum"] == 0, first
    again = _create(kvs, source, {"ClientToken": token, "note": "a retry"})
    assert again["ErrNum"] == 0 and again["TaskID"] == first["TaskID"], again
    other = _create(kvs, source, {"ClientToken": f"{token}-2"})
    assert other["ErrNum"] == 0 and other["TaskID"] != first["TaskID"], other
    without = _create(kvs, source, {})
    assert without["TaskID"] not in (first["TaskID"], other["TaskID"])
    info = kvs.client.get_task_by_task_id(TaskID=first["TaskID"])["TaskInfo"]
    assert json.loads(info["ExtParam"]) == {"ClientToken": token}  # the first request's


def test_create_wave_task_takes_a_client_token(kvs: Deployment, source: str) -> None:
    token = f"wave-{uuid.uuid4()}"
    ids = {
        kvs.create_wave(source, "out/tok.wave.json", ExtParam=json.dumps({"ClientToken": token}))
        for _ in range(3)
    }
    assert len(ids) == 1
    assert kvs.wait_task(ids.pop())["TaskStatus"] == "succ"


@pytest.mark.parametrize("token", ["x" * 65, "caf\u00e9", 7])
def test_a_bad_client_token_is_1018(kvs: Deployment, source: str, token: object) -> None:
    reply = _create(kvs, source, {"ClientToken": token})
    assert reply["ErrNum"] == 1018 and "ClientToken" in str(reply["ErrMsg"]), reply
