"""CreateFlowTask (FlowData items run in order under one TaskID, one flow callback) and
preset chains ``"A|B"`` in CreateTask, through the real API, a real worker, real ffmpeg and
a real callback receiver."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.kvs_client import close_kvs_client, make_kvs_client
from tests.support.media import make_video, probe
from tests.support.receiver import CallbackReceiver
from tests.support.server import cli, create_keys

MP4 = {"f": "mp4", "VIDEO": {"width": 240, "height": 180}, "AUDIO": {"ab": "64k"}}
FLV = {"f": "flv", "VIDEO": {"width": 160, "height": 120}, "AUDIO": {"ab": "64k"}}
COPY = {"f": "mp4", "VIDEO": {"vcodec": "copy"}, "AUDIO": {"acodec": "copy"}}
HOLD = "flowhold"  # a paused pipeline: flows wait there while a test changes their sources


@pytest.fixture(scope="module")
def src(kvs: Deployment, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Presets ``fl_mp4``, ``fl_flv``, ``fl_copy`` (avtrans), ``fl_info`` (avinfo),
    ``fl_logo`` (avlogo) and a 2 s 320x240 source."""
    c = kvs.client
    for name, param in (("fl_mp4", MP4), ("fl_flv", FLV), ("fl_copy", COPY)):
        assert c.preset(Preset=name, PresetType="avtrans", Param=param)["ErrNum"] in (0, 1201)
    assert c.preset(Preset="fl_info", PresetType="avinfo", Param={})["ErrNum"] in (0, 1201)
    logo = {"LOGOS": [[{"url": f"/{BUCKET}/flow/logo.png"}]]}
    assert c.preset(Preset="fl_logo", PresetType="avlogo", Param=logo)["ErrNum"] in (0, 1201)
    folder = tmp_path_factory.mktemp("flows")
    logo_file = folder / "logo.png"
    made = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "color=c=red:s=40x40",
         "-frames:v", "1", str(logo_file)],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    kvs.upload(logo_file, "flow/logo.png")
    return kvs.upload(make_video(folder, "src", seconds=2), "flow/src.mp4")


def _item(preset: str, src: str, key: str, **extra: Any) -> dict[str, Any]:
    return {
        "Preset": preset,
        "SrcInfo": [{"path": src, "index": 0, "type": "video"}],
        "DstBucket": BUCKET,
        "DstObjectKey": key,
        "DstDir": "",
        "DstAcl": "public-read",
        "ExtParam": "",
        **extra,
    }


def _flow(kvs: Deployment, **params: Any) -> dict[str, Any]:
    reply: dict[str, Any] = kvs.client.create_flow_task(**params)
    return reply


def _body(request: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.body)
    return body


@pytest.mark.slow
def test_two_items_succeed_with_the_seed_callback(
    kvs: Deployment, src: str, tmp_path: Path
) -> None:
    with CallbackReceiver() as receiver:
        reply = _flow(
            kvs,
            Pipeline="usual",
            IsTop=0,
            CbUrl=receiver.url,
            CbMethod="POST",
            FlowData=[
                _item("fl_mp4", src, "flow/ok/720p.mp4"),
                _item("fl_mp4|fl_flv", src, "flow/ok/360p.flv"),  # an item may be a chain
            ],
        )
        assert reply["ErrNum"] == 0, reply
        task_id = reply["TaskID"]
        [request] = receiver.wait_for(1, timeout=60)
    body = _body(request)
    # The seed's flow example, field by field: no top-level Type, Details an array.
    assert list(body) == ["TaskID", "Status", "Details"]
    assert body["TaskID"] == task_id and body["Status"] == 3
    assert [list(e) for e in body["Details"]] == [
        ["Order", "Type", "Status", "Errnum", "Errmsg", "Bucket", "OutInfo"]
    ] * 2
    for order, (element, key, fmt) in enumerate(
        zip(body["Details"], ("flow/ok/720p.mp4", "flow/ok/360p.flv"), ("mp4", "flv"), strict=True)
    ):
        assert element["Order"] == order
        assert (element["Type"], element["Status"], element["Errnum"]) == ("avtrans", 3, 0)
        assert (element["Errmsg"], element["Bucket"]) == ("", BUCKET)
        out = element["OutInfo"]
        assert out["dstpath"] == key
        assert isinstance(out["outMediainfo"], str)  # JSON text, as the seed prints it
        assert fmt in json.loads(out["outMediainfo"])["format"]["format_name"]
    first = probe(kvs.download("flow/ok/720p.mp4", tmp_path / "a.mp4"))
    second = probe(kvs.download("flow/ok/360p.flv", tmp_path / "b.flv"))
    assert [(s["width"], s["height"]) for s in first["streams"] if s["codec_type"] == "video"] == [
        (240, 180)
    ]
    assert [(s["width"], s["height"]) for s in second["streams"] if s["codec_type"] == "video"] == [
        (160, 120)
    ]
    info = kvs.client.get_task_by_task_id(TaskID=task_id)["TaskInfo"]
    assert (info["TaskStatus"], info["IsFlow"], info["Type"]) == ("succ", 1, "flow")
    assert [(i["Order"], i["Preset"], i["Status"], i["Errnum"]) for i in info["FlowItems"]] == [
        (0, "fl_mp4", 3, 0),
        (1, "fl_mp4|fl_flv", 3, 0),
    ]
    assert info["FlowItems"][1]["Items"][0]["dstpath"] == "flow/ok/360p.flv"
    assert all(i["Command"].startswith("ffmpeg ") for i in info["FlowItems"])
    assert "# item 0" in info["Command"] and "# item 1" in info["Command"]


@pytest.mark.slow
def test_a_failed_item_skips_the_rest(kvs: Deployment, src: str, tmp_path: Path) -> None:
    local = shutil.copy(kvs.data_dir / "buckets" / BUCKET / "flow" / "src.mp4", tmp_path)
    doomed = kvs.upload(Path(local), "flow/doomed.mp4")
    assert kvs.client.update_pipeline(PipelineName=HOLD, State="Paused")["ErrNum"] == 0
    with CallbackReceiver() as receiver:
        reply = _flow(
            kvs,
            Pipeline=HOLD,
            CbUrl=receiver.url,
            FlowData=[
                _item("fl_info", src, ""),
                _item("fl_mp4", doomed, "flow/fail/a.mp4"),
                _item("fl_flv", src, "flow/fail/b.flv"),
            ],
        )
        assert reply["ErrNum"] == 0, reply
        (kvs.data_dir / "buckets" / BUCKET / "flow" / "doomed.mp4").unlink()
        assert kvs.client.update_pipeline(PipelineName=HOLD, State="Active")["ErrNum"] == 0
        [request] = receiver.wait_for(1, timeout=60)
    body = _body(request)
    assert body["Status"] == 4
    assert [(e["Order"], e["Type"], e["Status"], e["Errnum"]) for e in body["Details"]] == [
        (0, "avinfo", 3, 0),
        (1, "avtrans", 4, 2041),
        (2, "avtrans", 4, 2001),
    ]
    assert body["Details"][0]["Bucket"] == "" and "metainfo" in body["Details"][0]["OutInfo"]
    assert body["Details"][1]["Errmsg"] == "file not exist"
    assert body["Details"][2]["Errmsg"] == "Unknown Error"
    assert body["Details"][2]["OutInfo"] == {}
    assert not (kvs.data_dir / "buckets" / BUCKET / "flow" / "fail").exists()  # b never ran
    info = kvs.wait_task(reply["TaskID"])
    assert (info["TaskStatus"], info["ErrorCode"]) == ("fail", "2041")
    assert [i["Status"] for i in info["FlowItems"]] == [3, 4, 4]


@pytest.mark.slow
def test_a_chain_writes_only_its_last_stage(kvs: Deployment, src: str, tmp_path: Path) -> None:
    with CallbackReceiver() as receiver:
        reply = kvs.client.create_task(
            Preset="fl_mp4|fl_flv",
            SrcInfo=[{"path": src}],
            DstBucket=BUCKET,
            DstObjectKey="flow/chain/out.flv",
            CbUrl=receiver.url,
        )
        assert reply["ErrNum"] == 0, reply
        [request] = receiver.wait_for(1, timeout=60)
    body = _body(request)
    assert (body["Status"], body["Type"]) == (3, "avtrans")
    [item] = body["Details"]["items"]
    assert item["dstpath"] == "flow/chain/out.flv"
    assert "flv" in json.loads(item["outMediainfo"])["format"]["format_name"]
    written = sorted(
        p.name for p in (kvs.data_dir / "buckets" / BUCKET / "flow" / "chain").iterdir()
    )
    assert written == ["out.flv"]  # stage A's file stayed in the scratch folder
    out = probe(kvs.download("flow/chain/out.flv", tmp_path / "out.flv"))
    [video] = [s for s in out["streams"] if s["codec_type"] == "video"]
    assert (video["width"], video["height"]) == (160, 120)
    assert abs(float(out["format"]["duration"]) - 2.0) < 0.3
    info = kvs.client.get_task_by_task_id(TaskID=reply["TaskID"])["TaskInfo"]
    assert (info["Preset"], info["Type"]) == ("fl_mp4|fl_flv", "avtrans")
    assert info["Chain"] == [
        {"Stage": 0, "Preset": "fl_mp4", "PresetType": "avtrans"},
        {"Stage": 1, "Preset": "fl_flv", "PresetType": "avtrans"},
    ]
    first, second = info["Command"].split(" && ffmpeg ", 1)
    assert "240" in first and "-f flv" in second


@pytest.mark.slow
def test_a_chain_may_end_in_hls(kvs: Deployment, src: str) -> None:
    hls = {"f": "hls", "hls_time": 1, "VIDEO": {"width": 160, "height": 120}}
    made = kvs.client.preset(Preset="fl_hls", PresetType="avtrans", Param=hls)
    assert made["ErrNum"] in (0, 1201), made
    reply = kvs.client.create_task(
        Preset="fl_mp4|fl_hls",
        SrcInfo=[{"path": src}],
        DstBucket=BUCKET,
        DstObjectKey="flow/hls/index.m3u8",
    )
    assert reply["ErrNum"] == 0, reply
    info = kvs.wait_task(reply["TaskID"])
    assert info["TaskStatus"] == "succ", info
    folder = kvs.data_dir / "buckets" / BUCKET / "flow" / "hls"
    playlist = (folder / "index.m3u8").read_text()
    segments = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    assert len(segments) >= 2 and all((folder / name).is_file() for name in segments)
    assert not any(name.endswith(".mp4") for name in os.listdir(folder))  # no stage-A file


def test_chain_refusals(kvs: Deployment, src: str) -> None:
    def create(preset: str) -> dict[str, Any]:
        reply: dict[str, Any] = kvs.client.create_task(
            Preset=preset, SrcInfo=[{"path": src}], DstBucket=BUCKET, DstObjectKey="flow/x.mp4"
        )
        return reply

    copy = create("fl_copy|fl_flv")
    assert copy["ErrNum"] == 1001 and "must not copy the video" in copy["ErrMsg"], copy
    three = create("fl_mp4|fl_flv|fl_mp4")
    assert three["ErrNum"] == 1001 and "a chain is two" in three["ErrMsg"], three
    assert create("fl_mp4|nope")["ErrNum"] == 1005
    assert create("fl_info|fl_mp4")["ErrNum"] == 1015
    assert create("fl_mp4|fl_info")["ErrNum"] == 1015
    alone = create("fl_logo")
    assert alone["ErrNum"] == 1015 and "chain" in alone["ErrMsg"], alone
    assert create("fl_logo|fl_mp4")["ErrNum"] == 1015  # a logo stage only comes second
    audio_only = kvs.client.preset(Preset="fl_mp3", PresetType="avtrans", Param={"f": "mp3"})
    assert audio_only["ErrNum"] in (0, 1201)
    no_video = create("fl_mp3|fl_logo")
    assert no_video["ErrNum"] == 1001 and "LOGOS" in no_video["ErrMsg"], no_video


@pytest.mark.slow
def test_a_logo_chain_draws_the_logo_in_one_pass(kvs: Deployment, src: str, tmp_path: Path) -> None:
    with CallbackReceiver() as receiver:
        reply = kvs.client.create_task(
            Preset="fl_mp4|fl_logo",
            SrcInfo=[{"path": src}],
            DstBucket=BUCKET,
            DstObjectKey="flow/logo/out.mp4",
            CbUrl=receiver.url,
        )
        assert reply["ErrNum"] == 0, reply
        [request] = receiver.wait_for(1, timeout=60)
    body = _body(request)
    assert (body["Status"], body["Type"]) == (3, "avtrans"), body
    out = kvs.download("flow/logo/out.mp4", tmp_path / "out.mp4")
    [video] = [s for s in probe(out)["streams"] if s["codec_type"] == "video"]
    assert (video["width"], video["height"]) == (240, 180)
    corner = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(out), "-frames:v", "1",
         "-vf", "crop=16:16:8:8", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    pixels = [corner[i : i + 3] for i in range(0, len(corner), 3)]
    red = sum(1 for r, g, b in pixels if r > 200 and g < 60 and b < 60)
    assert red > 0.9 * len(pixels), "the logo is not in the top-left corner"
    info = kvs.client.get_task_by_task_id(TaskID=reply["TaskID"])["TaskInfo"]
    assert [stage["PresetType"] for stage in info["Chain"]] == ["avtrans", "avlogo"]
    assert " && " not in info["Command"]  # one pass


def test_flow_validation(kvs: Deployment, src: str) -> None:
    # The Python SDK's sample sends a CreateTask body to CreateFlowTask.
    sample = _flow(kvs, **_item("fl_mp4", src, "flow/x.mp4"))
    assert sample["ErrNum"] == 1000 and "FlowData" in sample["ErrMsg"], sample
    assert _flow(kvs, FlowData=[])["ErrNum"] == 1000
    eleven = _flow(kvs, FlowData=[_item("fl_mp4", src, f"flow/{n}.mp4") for n in range(11)])
    assert eleven["ErrNum"] == 1001 and "at most 10" in eleven["ErrMsg"], eleven
    bad = _flow(
        kvs,
        FlowData=[_item("fl_mp4", src, "flow/x.mp4"), _item("fl_mp4", src, "/leading/slash.mp4")],
    )
    assert bad["ErrNum"] == 1014 and "FlowData[1]" in bad["ErrMsg"], bad
    missing = _flow(kvs, FlowData=[_item("fl_nope", src, "flow/x.mp4")])
    assert missing["ErrNum"] == 1005 and "FlowData[0]" in missing["ErrMsg"], missing
    before = kvs.client.get_task_list(Limit=1)["Total"]
    chained = _flow(kvs, Pipeline=HOLD, FlowData=[_item("fl_copy|fl_flv", src, "flow/x.flv")])
    assert chained["ErrNum"] == 1001, chained
    assert kvs.client.get_task_list(Limit=1)["Total"] == before  # nothing was queued


def test_a_lower_case_user_gets_the_lower_case_flow_callback(kvs: Deployment, src: str) -> None:
    ak, sk = create_keys(kvs.data_dir, user="flow_lower")
    granted = cli(kvs.data_dir, "bucket", "grant", BUCKET, "--user", "flow_lower", "--read-only")
    assert granted.returncode == 0, granted.stderr
    switched = cli(kvs.data_dir, "keys", "callbacks", "--user", "flow_lower", "--lowercase", "on")
    assert switched.returncode == 0, switched.stderr
    client = make_kvs_client(kvs.server.url, ak, sk)
    try:
        made = client.preset(Preset="fl_info", PresetType="avinfo", Param={})
        assert made["ErrNum"] == 0, made
        with CallbackReceiver() as receiver:
            item = _item("fl_info", src, "", DstBucket="")
            reply = client.create_flow_task(CbUrl=receiver.url, FlowData=[item])
            assert reply["ErrNum"] == 0, reply
            [request] = receiver.wait_for(1, timeout=60)
    finally:
        close_kvs_client(client)
    body = _body(request)
    assert list(body) == ["taskid", "status", "details"]  # no type, no itmes
    assert (body["taskid"], body["status"]) == (reply["TaskID"], 3)
    [element] = body["details"]
    assert list(element) == ["Order", "Type", "Status", "Errnum", "Errmsg", "Bucket", "OutInfo"]
    assert (element["Type"], element["Bucket"]) == ("avinfo", "")
    assert json.loads(element["OutInfo"]["metainfo"])["format"]
