"""CreateTask's validation rules and error codes (spec §2.6) through the official SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.media import make_audio


@pytest.fixture(scope="module")
def ready(kvs: Deployment, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An avinfo preset ``ct_info``, an avtrans preset ``ct_hd``, an avlogo preset ``ct_logo``
    (a kind without an executor), and a source path."""
    c = kvs.client
    assert c.preset(Preset="ct_info", PresetType="avinfo", Param={})["ErrNum"] in (0, 1201)
    assert c.preset(Preset="ct_hd", PresetType="avtrans", Param={"f": "mp4"})["ErrNum"] in (0, 1201)
    logo = {"LOGOS": [[{"url": "/media/in/logo.png"}]]}
    assert c.preset(Preset="ct_logo", PresetType="avlogo", Param=logo)["ErrNum"] in (0, 1201)
    assert c.preset(Preset="ct_wave", PresetType="audiowave", Param={})["ErrNum"] in (0, 1201)
    # HE-AAC is valid KVS (stored); Debian's ffmpeg has no libfdk_aac to run it.
    he_aac = {"f": "mp4", "AUDIO": {"profile": "aac_he"}}
    assert c.preset(Preset="ct_he", PresetType="avtrans", Param=he_aac)["ErrNum"] in (0, 1201)
    local = make_audio(tmp_path_factory.mktemp("ct"), "s", fmt="mp3", seconds=1)
    return kvs.upload(local, "in/ct.mp3")


def _body(src: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Preset": "ct_info",
        "SrcInfo": [{"path": src}],
        "DstBucket": BUCKET,
        "DstObjectKey": "out/ct.json",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("no preset", {"Preset": None}, 1005, "Preset"),
    ("unknown preset", {"Preset": "no_such_preset"}, 1005, "no_such_preset"),
    ("wave preset", {"Preset": "wave"}, 1015, "CreateWaveTask"),
    ("audiowave preset", {"Preset": "ct_wave"}, 1015, "CreateWaveTask"),
    ("no executor yet", {"Preset": "ct_logo"}, 1015, "cannot run"),
    ("chain", {"Preset": "ct_hd|ct_info"}, 1015, "chain"),
    ("HE-AAC without libfdk_aac", {"Preset": "ct_he"}, 1018, "Param.AUDIO.profile aac_he"),
    ("no SrcInfo", {"SrcInfo": None}, 1016, "SrcInfo"),
    ("SrcInfo not a list", {"SrcInfo": "x"}, 1016, "SrcInfo"),
    ("too many sources", {"SrcInfo": [{"path": "/media/in/ct.mp3"}] * 21}, 1017, "20"),
    ("path too long", {"SrcInfo": [{"path": "/media/" + "k" * 1100}]}, 1213, "1024"),
    ("source missing", {"SrcInfo": [{"path": "/media/in/none.mp3"}]}, 1210, "none.mp3"),
    ("bad bucket", {"DstBucket": "No_Such"}, 1011, "DstBucket"),
    ("missing bucket", {"DstBucket": "absent-bucket"}, 1011, "absent-bucket"),
    ("escaping key", {"DstObjectKey": "../x"}, 1014, "DstObjectKey"),
    ("bad DstDir", {"DstDir": "a/../b/"}, 1020, "DstDir"),
    ("bad ExtParam", {"ExtParam": "[1, 2]"}, 1018, "ExtParam"),
    ("bad Pipeline", {"Pipeline": "no such"}, 1022, "Pipeline"),
    ("unknown Pipeline", {"Pipeline": "never_made"}, 1022, "never_made"),
    ("bad IsTop", {"IsTop": 2}, 1001, "IsTop"),
    ("bad DstAcl", {"DstAcl": "world"}, 1001, "DstAcl"),
]


@pytest.mark.parametrize(("name", "changes", "code", "words"), CASES, ids=[c[0] for c in CASES])
def test_create_task_errors(
    kvs: Deployment, ready: str, name: str, changes: dict[str, Any], code: int, words: str
) -> None:
    reply = kvs.client.create_task(**_body(ready, **changes))
    assert reply["ErrNum"] == code, reply
    assert words in reply["ErrMsg"] and "TaskID" not in reply


def test_the_kinds_a_refusal_offers_are_those_a_preset_can_name(
    kvs: Deployment, ready: str
) -> None:
    reply = kvs.client.create_task(**_body(ready, Preset="ct_logo"))
    assert reply["ErrNum"] == 1015, reply
    offered = reply["ErrMsg"].split("supported: ", 1)[1].rstrip(")").split(", ")
    assert "avtrans" in offered and "avinfo" in offered
    assert "avtrans_part" not in offered  # internal: the parts of a split transcode


def test_accepted_forms(kvs: Deployment, ready: str, tmp_path: Path) -> None:
    c = kvs.client
    as_object = c.create_task(
        **_body(
            ready,
            SrcInfo={"Path": ready, "Type": "audio"},
            ExtParam={"note": "object tolerated"},
            IsTop="1",
            DstAcl="private",
            Pipeline="usual",
            CbMethod="POST",
        )
    )
    assert as_object["ErrNum"] == 0, as_object
    info = kvs.wait_task(as_object["TaskID"])
    assert info["TaskStatus"] == "succ" and info["IsTop"] == "1" and info["DstAcl"] == "private"
    assert json.loads(info["ExtParam"]) == {"note": "object tolerated"}
    assert info["SrcInfo"] == [{"path": ready, "index": 0, "type": "audio"}]
    as_string = c.create_task(**_body(ready, ExtParam=json.dumps({"a": 1}), DstObjectKey=""))
    assert as_string["ErrNum"] == 0
    assert c.get_task_by_task_id(TaskID=as_string["TaskID"])["TaskInfo"]["ExtParam"] == '{"a": 1}'
    # Queued tasks keep the preset as it was: delete it, the task still runs.
    assert c.preset(Preset="ct_gone", PresetType="avinfo", Param={})["ErrNum"] == 0
    kvs.client.update_pipeline(PipelineName="usual", State="Paused")
    try:
        queued = c.create_task(**_body(ready, Preset="ct_gone"))
        assert c.del_preset(Preset="ct_gone")["ErrNum"] == 0
    finally:
        kvs.client.update_pipeline(PipelineName="usual", State="Active")
    assert kvs.wait_task(queued["TaskID"])["TaskStatus"] == "succ"
