"""Kingsoft's current SDK (``kingsoftcloud-sdk-python``'s ``CommonClient``) against a real
``openkvs serve``, unchanged, in its three request formats (tests/support/kingsoft_client.py):
the default form POST with dotted keys, GET with the same keys in the query, and JSON.

Every test runs once per format. The answers are compared with what the official
``ksc-sdk-python`` (``kscore``) gets for the same request; the one expected difference is
that a form or query carries every value as a string, so a preset's ``Param`` is stored
and echoed with string leaves (``"width": "640"``) where a JSON client sent numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment, deploy
from tests.support.kingsoft_client import MODES, PROXY_VARIABLES, KingsoftClient, Mode
from tests.support.media import make_audio, make_video

AVTRANS_PARAM: dict[str, Any] = {
    "f": "mp4",
    "VIDEO": {"vcodec": "h264", "width": 640, "height": 360, "vb": "800k", "vr": 25},
    "AUDIO": {"acodec": "aac", "ab": "64k", "ar": 44100, "channels": 2},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A server of its own: these tests change the user's pipeline."""
    yield from deploy(tmp_path_factory.mktemp("kingsoft"))


@pytest.fixture(scope="module")
def sources(site: Deployment, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("kingsoft-media")
    video = make_video(folder, "clip", seconds=1, audio=True)
    audio = make_audio(folder, "tone", fmt="ogg", seconds=1)
    return {
        "video": site.upload(video, "ks/in/clip.mp4"),
        "audio": site.upload(audio, "ks/in/tone.ogg"),
    }


@pytest.fixture(params=MODES)
def ks(
    request: pytest.FixtureRequest, site: Deployment, monkeypatch: pytest.MonkeyPatch
) -> KingsoftClient:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    mode: Mode = request.param
    return KingsoftClient.create(site.server.url, site.access_key, site.secret_key, mode)


def _kscore(answer: dict[str, Any]) -> dict[str, Any]:
    """A kscore answer without the SDK's own ``ResponseMetadata``."""
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def _as_sent(mode: Mode, value: Any) -> Any:
    """``value`` as the server receives it: a form or a query carries strings only."""
    if mode == "json":
        return value
    if isinstance(value, dict):
        return {k: _as_sent(mode, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_sent(mode, v) for v in value]
    return str(value)


def _ok(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["ErrNum"] == 0, answer
    return answer


def _wait(ks: KingsoftClient, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll GetTaskByTaskID through the Kingsoft client until the task is finished."""
    deadline = time.monotonic() + timeout
    while True:
        info = _ok(ks.call("GetTaskByTaskID", TaskID=task_id))["TaskInfo"]
        if info["TaskStatus"] in ("succ", "fail") or time.monotonic() > deadline:
            return dict(info)
        time.sleep(0.05)


def test_preset_with_nested_param(ks: KingsoftClient, site: Deployment) -> None:
    name = f"ks_hd_{ks.mode}"
    _ok(
        ks.call(
            "Preset", Preset=name, PresetType="avtrans", Description="720p", Param=AVTRANS_PARAM
        )
    )
    detail = _ok(ks.call("GetPresetDetail", Preset=name))["PresetDetail"]
    assert detail["PresetType"] == "avtrans"
    assert detail["Param"] == _as_sent(ks.mode, AVTRANS_PARAM)
    assert _ok(ks.call("GetPresetDetail", Preset=name)) == _kscore(
        site.client.get_preset_detail(Preset=name)
    )

    changed = {**AVTRANS_PARAM, "VIDEO": {"vcodec": "h265", "width": 1280}}
    _ok(ks.call("UpdatePreset", Preset=name, PresetType="avtrans", Param=changed))
    listed = _ok(ks.call("GetPresetList", Presets=name, WithDetail=1))["PresetList"]
    assert [(p["Preset"], p["Param"]) for p in listed] == [(name, _as_sent(ks.mode, changed))]
    assert _ok(ks.call("GetPresetList", Presets=name, WithDetail=1)) == _kscore(
        site.client.get_preset_list(Presets=name, WithDetail=1)
    )
    # The nested Param was rebuilt before it was checked: a wrong leaf is named by its path.
    bad = ks.call(
        "Preset",
        Preset=f"{name}_x",
        PresetType="avtrans",
        Param={"f": "mp4", "VIDEO": {"vb": "1k"}},
    )
    assert bad["ErrNum"] == 1001 and "Param.VIDEO.vb" in bad["ErrMsg"], bad


def test_avinfo_task_with_srcinfo_array(
    ks: KingsoftClient, site: Deployment, sources: dict[str, str]
) -> None:
    name = f"ks_info_{ks.mode}"
    # An empty object vanishes from a flattened form or query, so those send Param as JSON text.
    param: Any = {} if ks.mode == "json" else "{}"
    _ok(ks.call("Preset", Preset=name, PresetType="avinfo", Param=param))
    src_info = [
        {"path": sources["video"], "type": "video", "index": 0},
        {"path": sources["audio"], "type": "audio", "index": 1},
    ]
    task_id = _ok(ks.call("CreateTask", Preset=name, SrcInfo=src_info))["TaskID"]
    info = _wait(ks, task_id)
    assert info["TaskStatus"] == "succ", info
    assert _ok(ks.call("GetTaskByTaskID", TaskID=task_id)) == _kscore(
        site.client.get_task_by_task_id(TaskID=task_id)
    )

    meta = _ok(ks.call("GetTaskMetaInfo", TaskID=task_id))
    assert [m["TaskID"] for m in meta["MetaList"]] == [task_id]
    streams = json.loads(meta["MetaList"][0]["MetaInfo"])["streams"]
    assert {s["codec_type"] for s in streams} == {"video", "audio"}
    assert meta == _kscore(site.client.get_task_meta_info(TaskID=task_id))

    today = datetime.now().strftime("%Y%m%d")
    yesterday = (datetime.now() - timedelta(days=1)).strftime("%Y%m%d")
    query = {"StartDate": int(yesterday), "EndDate": int(today), "Marker": 0, "Limit": 100}
    listed = _ok(ks.call("GetTaskList", **query))
    assert task_id in [t["TaskID"] for t in listed["TaskInfo"]]
    assert listed == _kscore(site.client.get_task_list(**query))


def test_wave_task(
    ks: KingsoftClient, site: Deployment, sources: dict[str, str], tmp_path: Path
) -> None:
    key = f"ks/out/{ks.mode}.wave.json"
    reply = ks.call(
        "CreateWaveTask",
        Preset="wave",
        SrcInfo=[{"path": sources["audio"]}],
        DstBucket=BUCKET,
        DstObjectKey=key,
        points=40,
        ExtParam={"format": "points"},
    )
    info = _wait(ks, _ok(reply)["TaskID"])
    assert info["TaskStatus"] == "succ", info
    wave = json.loads(site.download(key, tmp_path / "wave.json").read_text())
    assert (wave["points"], len(wave["data"])) == (40, 40)


def test_pipeline(ks: KingsoftClient, site: Deployment) -> None:
    description = f"set through {ks.mode}"
    _ok(
        ks.call(
            "UpdatePipeline",
            PipelineName="usual",
            State="Active",
            Description=description,
            RegularStart="",
            RegularDuration=0,
        )
    )
    answer = _ok(ks.call("QueryPipeline", PipelineName="usual"))
    assert (answer["State"], answer["Description"]) == ("Active", description)
    assert answer == _kscore(site.client.query_pipeline(PipelineName="usual"))


def test_statistics(ks: KingsoftClient, site: Deployment) -> None:
    start = datetime.now().strftime("%Y%m01")
    stats = _ok(ks.call("QueryTaskStats", StartDate=int(start)))
    assert stats["StartDate"] == start and set(stats["TaskStatus"]) >= {"Total", "Success"}
    assert stats == _kscore(site.client.query_task_stats(StartDate=int(start)))

    now = int(time.time())
    calls = _ok(
        ks.call(
            "GetInterfaceNumber",
            StartUnixTime=now - 3600,
            EndUnixTime=now + 60,
            Granularity=60,
            ResultType=2,
        )
    )
    assert (calls["StartUnixTime"], calls["Granularity"]) == (str(now - 3600), "60")
    assert isinstance(calls["Datas"], list)


def test_missing_parameter_is_1000(
    ks: KingsoftClient, site: Deployment, sources: dict[str, str]
) -> None:
    request = {
        "Preset": "wave",
        "SrcInfo": [{"path": sources["audio"]}],
        "DstBucket": BUCKET,
        "DstObjectKey": "ks/out/never.json",
    }
    answer = ks.call("CreateWaveTask", **request)
    assert answer["ErrNum"] == 1000 and "points" in answer["ErrMsg"], answer
    assert answer == _kscore(site.client.create_wave_task(**request))
