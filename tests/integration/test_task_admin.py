"""Task lists, pipelines, statistics and console actions through the official SDK, and the
calls the SDK's ``kscore.kvs`` wrapper makes with its empty-string defaults."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.kvs_client import close_kvs_client, make_kvs_client, make_wrapper
from tests.support.media import make_audio, make_video
from tests.support.server import cli, create_keys

CST = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def finished(kvs: Deployment, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Three finished wave tasks: two succeeded, one failed with 3150."""
    folder = tmp_path_factory.mktemp("admin")
    good = kvs.upload(make_audio(folder, "a", fmt="ogg", seconds=1), "in/admin.ogg")
    bad_file = folder / "bad.bin"
    bad_file.write_bytes(b"\x01" * 5000)
    bad = kvs.upload(bad_file, "in/admin-bad.bin")
    ids = {}
    for name, src in (("ok1", good), ("ok2", good), ("bad", bad)):
        task_id = kvs.create_wave(src, f"out/{name}.json", points=10)
        ids[name] = task_id
        kvs.wait_task(task_id)
    return ids


def test_get_task_list_filters_and_pages(kvs: Deployment, finished: dict[str, str]) -> None:
    c = kvs.client
    everything = c.get_task_list(Limit=100)
    assert everything["ErrNum"] == 0 and everything["Marker"] == 0
    all_ids = [t["TaskID"] for t in everything["TaskInfo"]]
    assert set(finished.values()) <= set(all_ids)
    created = [t["CreateTime"] for t in everything["TaskInfo"]]
    assert created == sorted(created, reverse=True)
    today = datetime.now(CST).strftime("%Y%m%d")
    assert everything["EndDate"] == today and everything["StartDate"] == today[:6] + "01"

    failed = c.get_task_list(TaskStatus="fail", ErrorCode="3150")
    assert finished["bad"] in [t["TaskID"] for t in failed["TaskInfo"]]
    assert all(t["TaskStatus"] == "fail" for t in failed["TaskInfo"])
    assert all(t["ErrorCode"] == "3150" for t in failed["TaskInfo"])

    total = everything["Total"]
    first = c.get_task_list(Marker=0, Limit=2)
    second = c.get_task_list(Marker=2, Limit=2)
    assert (first["Count"], first["Total"]) == (min(2, total), total)
    assert [t["TaskID"] for t in first["TaskInfo"] + second["TaskInfo"]] == all_ids[:4]

    now = int(time.time())
    recent = c.get_task_list(StartTime=now - 3600, EndTime=now + 60)
    assert set(finished.values()) <= {t["TaskID"] for t in recent["TaskInfo"]}
    assert c.get_task_list(StartTime=now + 3600, EndTime=now + 7200)["Total"] == 0


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"StartDate": 20240101}, 1019),  # more than 90 days ago
        (
            {
                "StartDate": int((datetime.now(CST) - timedelta(days=40)).strftime("%Y%m%d")),
                "EndDate": int(datetime.now(CST).strftime("%Y%m%d")),
            },
            1019,
        ),  # over 31 days
        ({"StartDate": 20991231, "EndDate": 20991201}, 1001),
        ({"StartDate": 20241345}, 1001),
        ({"TaskStatus": "running"}, 1001),
        ({"Limit": 0}, 1001),
    ],
)
def test_get_task_list_errors(kvs: Deployment, query: dict[str, object], code: int) -> None:
    assert kvs.client.get_task_list(**query)["ErrNum"] == code


def test_wrapper_calls(kvs: Deployment, finished: dict[str, str]) -> None:
    w = make_wrapper(kvs.client)
    listed = w.GetTaskList()  # ...&StartTime=0&EndTime=0&ErrorCode=&TaskStatus=
    assert listed["ErrNum"] == 0 and listed["Total"] >= 3
    assert w.GetTaskList(EndDate=int(datetime.now(CST).strftime("%Y%m%d")))["ErrNum"] == 0
    as_list = w.GetTaskMetaInfo()  # the wrapper sends GetTaskList here
    assert as_list["ErrNum"] == 0 and "TaskInfo" in as_list
    meta = w.GetTaskMetaInfo(TaskID=finished["ok1"])  # a wave task has no metadata
    assert meta["ErrNum"] == 0 and meta["MetaList"] == []
    pipeline = w.QueryPipeline()
    assert pipeline["ErrNum"] == 0 and pipeline["State"] == "Active"
    assert pipeline["TaskStatus"]["Total"] >= 3
    stats = w.QueryTaskStats()  # StartDate=20170101: counted from the 90 days kept
    assert stats["ErrNum"] == 0 and stats["TaskStatus"]["Success"] >= 2
    assert stats["TaskStatus"]["Failed"] >= 1
    trans = w.GetMediaTransDuration()  # StartUnixTime=0&EndUnixTime=0&Granularity=5
    assert trans["ErrNum"] == 0 and len(trans["Datas"]) in (288, 289)
    assert w.DelTaskByTaskID()["ErrNum"] == 1000
    assert w.TopTaskByTaskID()["ErrNum"] == 1000


def test_query_task_stats_by_preset(kvs: Deployment, finished: dict[str, str]) -> None:
    stats = kvs.client.query_task_stats(
        Preset="wave", StartDate=datetime.now(CST).strftime("%Y%m%d")
    )
    assert stats["ErrNum"] == 0 and stats["Preset"] == "wave"
    counts = stats["TaskStatus"]
    assert (
        counts["Total"]
        == counts["Success"] + counts["Failed"] + counts["Running"] + counts["Pending"]
    )
    assert kvs.client.query_task_stats(Preset="no_such_preset")["ErrNum"] == 1005


def test_interface_number_counts_calls(kvs: Deployment) -> None:
    before = int(time.time()) - 600
    for _ in range(3):
        kvs.client.get_task_by_task_id(TaskID="0" * 40)
    reply = kvs.client.get_interface_number(
        StartUnixTime=before, EndUnixTime=int(time.time()) + 1, Granularity=60, ResultType=2
    )
    assert reply["ErrNum"] == 0 and reply["Granularity"] == "60"
    [data] = reply["Datas"]
    types = {t["Type"]: t["Number"] for t in data["Types"]}
    assert types["GetTaskByTaskID"] >= 3
    assert data["Number"] == sum(types.values())
    shots = kvs.client.get_screenshot_number(StartUnixTime=before, EndUnixTime=int(time.time()))
    assert shots["ErrNum"] == 0
    assert kvs.client.get_interface_number(StartUnixTime=10, EndUnixTime=5)["ErrNum"] == 1001
    assert kvs.client.get_interface_number(Granularity=7)["ErrNum"] == 1001


def test_pipeline_settings(kvs: Deployment) -> None:
    c = kvs.client
    assert c.query_pipeline(PipelineName="nightly")["ErrNum"] == 1023
    reply = c.update_pipeline(
        PipelineName="nightly",
        State="Active",
        Description="off-peak",
        RegularStart="01:00:00",
        RegularDuration=14400,
    )
    assert reply["ErrNum"] == 0
    got = c.query_pipeline(PipelineName="nightly")
    assert (
        got["State"],
        got["Description"],
        got["RegularStart"],
        got["RegularDuration"],
        got["Quota"],
    ) == ("Active", "off-peak", "01:00:00", 14400, 10)
    assert c.update_pipeline(PipelineName="bad name!")["ErrNum"] == 1022
    assert c.update_pipeline(PipelineName="nightly", State="Stopped")["ErrNum"] == 1024
    assert c.update_pipeline(PipelineName="nightly", RegularStart="25:00:00")["ErrNum"] == 1001
    assert c.update_pipeline(PipelineName="nightly", Quota=51)["ErrNum"] == 1001
    assert c.update_pipeline()["ErrNum"] == 1000


def test_window_and_unknown_pipeline_for_tasks(kvs: Deployment, tmp_path: Path) -> None:
    src = kvs.upload(make_audio(tmp_path, "w", fmt="ogg", seconds=1), "in/window.ogg")
    args = {
        "Preset": "wave",
        "SrcInfo": [{"path": src}],
        "DstBucket": BUCKET,
        "DstObjectKey": "out/w.json",
        "points": 5,
    }
    assert kvs.client.create_wave_task(Pipeline="nowhere", **args)["ErrNum"] == 1022
    # A window that closed a minute ago: the task waits in its queue.
    closed = (datetime.now(CST) - timedelta(minutes=10)).strftime("%H:%M:%S")
    kvs.client.update_pipeline(PipelineName="later", RegularStart=closed, RegularDuration=540)
    reply = kvs.client.create_wave_task(Pipeline="later", **args)
    assert reply["ErrNum"] == 0
    time.sleep(1.5)
    info = kvs.client.get_task_by_task_id(TaskID=reply["TaskID"])["TaskInfo"]
    assert (info["TaskStatus"], info["Pipeline"]) == ("init", "later")
    kvs.client.update_pipeline(PipelineName="later", RegularDuration=0)  # no window
    assert kvs.wait_task(reply["TaskID"])["TaskStatus"] == "succ"


def test_console_actions(kvs: Deployment, tmp_path: Path) -> None:
    c = kvs.client
    assert c.preset(Preset="console_info", PresetType="avinfo", Param={})["ErrNum"] == 0
    src = kvs.upload(make_audio(tmp_path, "c", fmt="mp3", seconds=1), "in/console.mp3")
    made = c.fetch_object_media_process(
        Preset="console_info", SrcInfo=[{"path": src}], DstBucket=BUCKET, DstObjectKey=""
    )
    assert made["ErrNum"] == 0 and made["ProcessTaskId"] == made["TaskID"]
    detail = c.get_fetch_object_media_process(ProcessTaskId=made["TaskID"])
    assert detail["TaskInfo"]["TaskID"] == made["TaskID"]
    listed = c.list_fetch_object_media_process(Marker="", Limit=10)
    assert made["TaskID"] in [t["TaskID"] for t in listed["TaskInfo"]]
    assert all(t["Preset"] == "console_info" for t in listed["TaskInfo"])
    assert c.get_fetch_object_media_process(ProcessTaskId="nope")["ErrNum"] == 1009


def test_statistics_count_transcoded_seconds_and_images(kvs: Deployment, tmp_path: Path) -> None:
    """A user of their own (other tests share the server): one 3 s transcode to 320x240
    h264, one snapshot and a sample of 3 images; then GetMediaTransDuration sums 3 s of
    h264 in its resolution class and GetScreenshotNumber counts 4 images."""
    access_key, secret_key = create_keys(kvs.data_dir, user="stats_user")
    assert cli(kvs.data_dir, "bucket", "grant", BUCKET, "--user", "stats_user").returncode == 0
    client = make_kvs_client(kvs.server.url, access_key, secret_key)
    try:
        before = int(time.time()) - 60
        clip = make_video(tmp_path, "stats", seconds=3, size="320x240")
        kvs.upload(clip, "stats/clip.mp4")
        presets = {
            "st_mp4": ("avtrans", {"f": "mp4", "VIDEO": {"vcodec": "h264", "preset": "ultrafast"}}),
            "st_shot": ("avsnapshot", {"f": "jpg", "ss": "1"}),
            "st_sample": ("avsample", {"f": "jpg", "interval": 1}),
        }
        for name, (preset_type, param) in presets.items():
            reply = client.preset(Preset=name, PresetType=preset_type, Param=param)
            assert reply["ErrNum"] == 0, reply
        tasks = [
            client.create_task(
                Preset=name,
                SrcInfo=[{"path": f"/{BUCKET}/stats/clip.mp4"}],
                DstBucket=BUCKET,
                DstObjectKey=f"stats/out-{name}.{'mp4' if name == 'st_mp4' else 'jpg'}",
                DstDir="stats/samples/",
            )
            for name in presets
        ]
        for reply in tasks:
            assert reply["ErrNum"] == 0, reply
            deadline = time.monotonic() + 60
            while (info := client.get_task_by_task_id(TaskID=reply["TaskID"])["TaskInfo"])[
                "TaskStatus"
            ] not in ("succ", "fail") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert info["TaskStatus"] == "succ", info
        after = int(time.time()) + 1
        trans = client.get_media_trans_duration(
            StartUnixTime=before, EndUnixTime=after, Granularity=60, ResultType=2
        )
        assert trans["ErrNum"] == 0, trans
        [data] = trans["Datas"]
        assert data["Duration"] == 3
        [vcodec] = data["VCodecs"]
        assert vcodec["VCodec"] == "h264" and vcodec["Duration"] == 3
        assert [r["Duration"] for r in vcodec["Resolutions"]] == [3]
        shots = client.get_screenshot_number(
            StartUnixTime=before, EndUnixTime=after, Granularity=60, ResultType=2
        )
        assert shots["ErrNum"] == 0 and [d["Number"] for d in shots["Datas"]] == [1 + 3]
    finally:
        close_kvs_client(client)
