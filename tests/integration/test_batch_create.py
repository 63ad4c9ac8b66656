"""BatchCreateTask (spec §2.24): a JSON array of CreateTask bodies, each validated and queued
on its own, answered with a parallel ``TaskIDs`` list. Sent as signed raw requests: the
official Python SDK has no BatchCreateTask (only the PHP SDK sends it)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.media import make_audio, make_video
from tests.support.server import cli, create_keys

OTHER_BUCKET = "batch-other"


@pytest.fixture(scope="module")
def sources(kvs: Deployment, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Presets ``bt_info`` (avinfo) and ``bt_mp4`` (avtrans), a 1 s audio and a 1 s video
    in ``media``, and a bucket of another user."""
    c = kvs.client
    assert c.preset(Preset="bt_info", PresetType="avinfo", Param={})["ErrNum"] in (0, 1201)
    mp4 = {"f": "mp4", "VIDEO": {"width": 160, "height": 120}}
    assert c.preset(Preset="bt_mp4", PresetType="avtrans", Param=mp4)["ErrNum"] in (0, 1201)
    folder = tmp_path_factory.mktemp("batch")
    audio = kvs.upload(make_audio(folder, "a", fmt="mp3", seconds=1), "batch/a.mp3")
    video = kvs.upload(make_video(folder, "v", seconds=1, size="160x120"), "batch/v.mp4")
    create_keys(kvs.data_dir, user="batchother")
    made = cli(kvs.data_dir, "bucket", "create", OTHER_BUCKET, "--user", "batchother")
    assert made.returncode == 0, made.stderr
    return {"audio": audio, "video": video}


def _batch(kvs: Deployment, body: Any, *, raw: bytes | None = None) -> dict[str, Any]:
    content = raw if raw is not None else json.dumps(body).encode()
    url = kvs.presigned("POST", "Action=BatchCreateTask&Version=2017-01-01", content)
    with httpx.Client(trust_env=False, timeout=30) as http:
        reply = http.post(url, content=content, headers={"Content-Type": "application/json"})
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def _info(src: str, key: str, **extra: Any) -> dict[str, Any]:
    return {
        "Preset": "bt_info",
        "SrcInfo": [{"path": src}],
        "DstBucket": BUCKET,
        "DstObjectKey": key,
        **extra,
    }


def _total(kvs: Deployment) -> int:
    reply = kvs.client.get_task_list(Limit=1)
    assert reply["ErrNum"] == 0, reply
    return int(reply["Total"])


def _calls(kvs: Deployment, since: int) -> dict[str, int]:
    reply = kvs.client.get_interface_number(
        StartUnixTime=since, EndUnixTime=int(time.time()) + 1, Granularity=60, ResultType=2
    )
    assert reply["ErrNum"] == 0, reply
    [data] = reply["Datas"]
    return {t["Type"]: int(t["Number"]) for t in data["Types"]}


@pytest.mark.slow
def test_each_item_is_queued_or_refused_on_its_own(
    kvs: Deployment, sources: dict[str, str], tmp_path: Path
) -> None:
    since = int(time.time()) - 600
    calls = _calls(kvs, since)
    items: list[Any] = [
        _info(sources["audio"], "batch/out/a.json"),
        _info(sources["audio"], "batch/out/none.json", Preset="no_such_preset"),
        {
            "Preset": "bt_mp4",
            "SrcInfo": [{"path": sources["video"]}],
            "DstBucket": BUCKET,
            "DstObjectKey": "batch/out/v.mp4",
        },
        "not an object",
        _info(f"/{OTHER_BUCKET}/in/x.mp3", "batch/out/other.json"),
        _info(sources["video"], "batch/out/v.json", ExtParam={"ClientToken": "batch-token-1"}),
    ]
    answer = _batch(kvs, items)
    assert answer["ErrNum"] == 0, answer
    results = answer["TaskIDs"]
    assert len(results) == len(items)
    queued = [results[i] for i in (0, 2, 5)]
    for result in queued:
        assert result["ErrNum"] == 0 and result["ErrMsg"] == "success", result
        assert len(result["TaskID"]) == 40
    assert len({r["TaskID"] for r in queued}) == 3
    refused = {i: results[i] for i in (1, 3, 4)}
    assert refused[1]["ErrNum"] == 1005 and "no_such_preset" in refused[1]["ErrMsg"]
    assert refused[3]["ErrNum"] == 1001 and "item 3" in refused[3]["ErrMsg"]
    assert refused[4]["ErrNum"] == 1212, refused[4]
    assert all(r["TaskID"] == "" for r in refused.values())

    for result in queued:
        info = kvs.wait_task(result["TaskID"])
        assert info["TaskStatus"] == "succ", info
    made = kvs.download("batch/out/v.mp4", tmp_path / "v.mp4")
    assert made.stat().st_size > 0

    # ClientToken per item: the same token again queues nothing new for that item
    again = _batch(kvs, [items[5], _info(sources["audio"], "batch/out/a2.json")])
    assert again["ErrNum"] == 0, again
    assert again["TaskIDs"][0]["TaskID"] == results[5]["TaskID"]
    assert again["TaskIDs"][1]["TaskID"] not in {r["TaskID"] for r in queued}

    # the calls are counted as BatchCreateTask, not as CreateTask
    after = _calls(kvs, since)
    assert after.get("BatchCreateTask", 0) == calls.get("BatchCreateTask", 0) + 2
    assert after.get("CreateTask", 0) == calls.get("CreateTask", 0)


def test_more_than_fifty_items_queue_nothing(kvs: Deployment, sources: dict[str, str]) -> None:
    before = _total(kvs)
    items = [_info(sources["audio"], f"batch/many/{i}.json") for i in range(51)]
    answer = _batch(kvs, items)
    assert answer["ErrNum"] == 1001 and "at most 50" in answer["ErrMsg"], answer
    assert "TaskIDs" not in answer
    assert _total(kvs) == before


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        (b"", 1000, "required"),
        (b"[]", 1001, "empty array"),
        (b'{"Preset": "bt_info"}', 1001, "JSON array"),
        (b'"text"', 1001, "JSON array"),
        (b"[{", 1001, "not valid JSON"),
    ],
    ids=["no body", "empty array", "object", "string", "broken JSON"],
)
def test_a_body_that_is_not_a_list_of_tasks_is_refused(
    kvs: Deployment, sources: dict[str, str], raw: bytes, code: int, words: str
) -> None:
    before = _total(kvs)
    answer = _batch(kvs, None, raw=raw)
    assert answer["ErrNum"] == code and words in answer["ErrMsg"], answer
    assert "TaskIDs" not in answer
    assert _total(kvs) == before


def test_other_actions_still_refuse_an_array_body(kvs: Deployment) -> None:
    body = b'[{"Preset": "bt_info"}]'
    url = kvs.presigned("POST", "Action=CreateTask&Version=2017-01-01", body)
    with httpx.Client(trust_env=False, timeout=30) as http:
        answer = http.post(url, content=body).json()
    assert answer["ErrNum"] == 1001 and "JSON object" in answer["ErrMsg"], answer
