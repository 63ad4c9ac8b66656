"""Two users: each sees, changes, tops and deletes only their own things."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.kvs_client import close_kvs_client, make_kvs_client
from tests.support.media import make_audio
from tests.support.server import create_keys


@pytest.fixture
def bob(kvs: Deployment) -> Iterator[Any]:
    ak, sk = create_keys(kvs.data_dir, user="bob")
    client = make_kvs_client(kvs.server.url, ak, sk)
    yield client
    close_kvs_client(client)


def test_cross_user_access_is_refused(kvs: Deployment, bob: Any, tmp_path: Path) -> None:
    alice = kvs.client
    assert alice.preset(Preset="alice_info", PresetType="avinfo", Param={})["ErrNum"] == 0
    assert alice.update_pipeline(PipelineName="alice_q", State="Paused")["ErrNum"] == 0
    src = kvs.upload(make_audio(tmp_path, "t", fmt="ogg", seconds=1), "in/tenancy.ogg")
    queued = alice.create_wave_task(
        Preset="wave",
        SrcInfo=[{"path": src}],
        DstBucket=BUCKET,
        DstObjectKey="out/t.json",
        points=5,
        Pipeline="alice_q",
    )
    task_id = queued["TaskID"]

    # reads
    assert bob.get_task_by_task_id(TaskID=task_id)["ErrNum"] == 1200
    assert bob.get_task_meta_info(TaskID=task_id)["ErrNum"] == 1200
    assert bob.get_fetch_object_media_process(ProcessTaskId=task_id)["ErrNum"] == 1200
    assert bob.get_preset_detail(Preset="alice_info")["ErrNum"] == 1200
    assert bob.query_pipeline(PipelineName="alice_q")["ErrNum"] == 1023
    assert task_id not in [t["TaskID"] for t in bob.get_task_list(Limit=100)["TaskInfo"]]
    assert "alice_info" not in [p["Preset"] for p in bob.get_preset_list()["PresetList"]]
    assert bob.query_pipeline(PipelineName="usual")["TaskStatus"]["Pending"] == 0
    # changes
    assert bob.update_preset(Preset="alice_info", PresetType="avinfo", Param={})["ErrNum"] == 1200
    assert bob.del_preset(Preset="alice_info")["ErrNum"] == 1200
    assert bob.top_task_by_task_id(TaskID=task_id)["ErrNum"] == 1200
    assert bob.del_task_by_task_id(TaskID=task_id)["ErrNum"] == 1200
    # a preset or pipeline of the same name is bob's own, separate one
    assert bob.preset(Preset="alice_info", PresetType="avinfo", Param={})["ErrNum"] == 0
    assert (
        bob.create_task(
            Preset="alice_info", SrcInfo=[{"path": src}], DstBucket=BUCKET, Pipeline="alice_q"
        )["ErrNum"]
        == 1022
    )

    # nothing of alice's changed
    info = alice.get_task_by_task_id(TaskID=task_id)["TaskInfo"]
    assert (info["TaskStatus"], info["IsTop"]) == ("init", "0")
    assert alice.get_preset_detail(Preset="alice_info")["ErrNum"] == 0
    assert alice.query_pipeline(PipelineName="alice_q")["State"] == "Paused"
    assert alice.del_task_by_task_id(TaskID=task_id)["ErrNum"] == 0
