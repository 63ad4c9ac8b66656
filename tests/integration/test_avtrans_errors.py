"""avtrans tasks end to end (real ``openkvs serve``, the official SDK, real ffmpeg): the
callback item and its outMediainfo, DstAcl and content type, and every failure of
docs/error-codes.md "Which failure of a transcode gives which code", with the scratch folder
checked after each outcome."""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment, deploy
from tests.support.media import make_video, probe
from tests.support.processes import children_of, wait_for, wait_until_gone
from tests.support.receiver import CallbackReceiver
from tests.support.server import cli

#: A transcode of the long source takes many seconds: it is stopped long before it ends. A
#: high bit rate makes its output grow fast (the output limit's test).
HEAVY = {
    "f": "mp4",
    "VIDEO": {"width": 960, "height": 540, "vb": "8000000", "preset": "veryfast"},
    "AUDIO": {"ab": "64k"},
}
#: A quick transcode of the short sources.
LIGHT = {"f": "mp4", "VIDEO": {"width": 160, "height": 120}, "AUDIO": {"ab": "64k"}}


def _repeat(clip: Path, times: int, out: Path) -> Path:
    """``clip`` played ``times`` times, by stream copy (a long source made cheaply)."""
    listing = out.with_suffix(".txt")
    listing.write_text(f"file '{clip}'\n" * times)
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "concat", "-safe", "0",
            "-i", str(listing), "-c", "copy", "-movflags", "+faststart", str(out),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("avtrans-media")
    short = make_video(folder, "short", seconds=2, size="320x240")
    block = make_video(folder, "block", seconds=2, size="1280x720")
    long = _repeat(block, 60, folder / "long.mp4")  # 120 s of 720p
    medium = _repeat(block, 4, folder / "medium.mp4")  # 8 s of 720p
    noise = folder / "noise.mp4"
    noise.write_bytes(random.Random(7).randbytes(300_000))
    plain = folder / "plain.mp4"  # its index (moov) at the end, as a camera writes it
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(short), "-c", "copy", str(plain)],
        check=True,
        timeout=60,
    )
    data = plain.read_bytes()
    truncated = folder / "truncated.mp4"  # an upload cut short: the index never came
    truncated.write_bytes(data[: len(data) // 2])
    return {
        "short": short,
        "long": long,
        "medium": medium,
        "noise": noise,
        "truncated": truncated,
    }


#: Extra buckets of the shared server, deleted by the tests that need their output to fail.
DOOMED = ("doomed-before", "doomed-during")


def _prepared(
    data_dir: Path, media: dict[str, Path], buckets: tuple[str, ...]
) -> Iterator[Deployment]:
    """A server whose bucket ``media`` holds every source as ``in/<name>.mp4`` (placed in
    the local storage's folders before it starts, as an operator may: the start adopts
    them), plus empty ``buckets``."""
    data_dir.mkdir(mode=0o700)
    root = data_dir / "buckets"
    for name, path in media.items():
        target = root / BUCKET / "in" / f"{name}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    for bucket in buckets:
        (root / bucket).mkdir(parents=True)
    return deploy(data_dir, {"OPENKVS_WORKERS": "1"})


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]
) -> Iterator[Deployment]:
    sources = {**media, "vanishing": media["short"]}
    yield from _prepared(tmp_path_factory.mktemp("avtrans") / "data", sources, DOOMED)


#: Settings the limits' test starts the server with.
LIMITS = ("OPENKVS_TASK_TIMEOUT", "OPENKVS_MAX_OUTPUT_MB", "OPENKVS_FFMPEG_MAX_RSS_MB")


def _restart(kvs: Deployment, **env: str) -> None:
    """Restart the server with ``env`` as its only limits."""
    kvs.server.stop()
    kvs.server.env = {k: v for k, v in kvs.server.env.items() if k not in LIMITS} | env
    kvs.server.start()


@pytest.fixture
def kvs(deployment: Deployment) -> Deployment:
    """The shared server, without limits (restarted without them after the limits' test)."""
    if not deployment.server.running or set(LIMITS) & deployment.server.env.keys():
        _restart(deployment)
    return deployment


def _src(name: str) -> str:
    return f"/{BUCKET}/in/{name}.mp4"


def _preset(kvs: Deployment, name: str, param: dict[str, Any]) -> str:
    reply = kvs.client.preset(Preset=name, PresetType="avtrans", Param=param)
    assert reply["ErrNum"] in (0, 1201), reply
    return name


def _create(kvs: Deployment, preset: str, src: str, key: str, **extra: Any) -> str:
    reply = kvs.client.create_task(
        Preset=preset,
        SrcInfo=[{"path": src}],
        DstBucket=extra.pop("DstBucket", BUCKET),
        DstObjectKey=key,
        **extra,
    )
    assert reply["ErrNum"] == 0, reply
    return str(reply["TaskID"])


def _failed(kvs: Deployment, task_id: str, code: int, timeout: float = 60) -> dict[str, Any]:
    info = kvs.wait_task(task_id, timeout)
    assert (info["TaskStatus"], info["ErrorCode"]) == ("fail", str(code)), info
    return info


def _scratch_entries(kvs: Deployment) -> list[Path]:
    """Everything under the scratch folder (folders too)."""
    scratch = kvs.data_dir / "scratch"
    return sorted(scratch.rglob("*")) if scratch.exists() else []


def _source_links(pid: int) -> list[str]:
    """The sandbox's link folders of process ``pid``."""
    return [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"openkvs-source-{pid}-")]


def _assert_clean(kvs: Deployment) -> None:
    assert _scratch_entries(kvs) == []
    assert _source_links(kvs.server.pid) == []


def _ffmpeg_of(kvs: Deployment) -> list[Any]:
    return wait_for(functools.partial(children_of, kvs.server.pid, "ffmpeg"), timeout=30)


def _shown(kvs: Deployment, task_id: str) -> dict[str, Any]:
    result = cli(kvs.data_dir, "task", "show", task_id)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def _pause(kvs: Deployment, paused: bool) -> None:
    state = "Paused" if paused else "Active"
    assert kvs.client.update_pipeline(PipelineName="usual", State=state)["ErrNum"] == 0


# -- success -------------------------------------------------------------------------------


def test_success_item_outmediainfo_acl_and_content_type(kvs: Deployment) -> None:
    preset = _preset(kvs, "avt_light", LIGHT)
    with CallbackReceiver() as receiver:
        task_id = _create(
            kvs, preset, _src("short"), "out/private.mp4", DstAcl="private", CbUrl=receiver.url
        )
        public_id = _create(  # DstAcl defaults to public-read
            kvs, preset, _src("short"), "out/public.mp4", CbUrl=receiver.url
        )
        callbacks = receiver.wait_for(2, timeout=60)
    body = next(c.json for c in callbacks if c.json["TaskID"] == task_id)
    assert (body["Status"], body["Type"], body["Details"]["errnum"]) == (3, "avtrans", 0)
    [item] = body["Details"]["items"]
    assert set(item) == {"dstpath", "segmentlisttype", "outMediainfo"}
    assert (item["dstpath"], item["segmentlisttype"]) == ("out/private.mp4", "")
    assert isinstance(item["outMediainfo"], str)
    info = json.loads(item["outMediainfo"])

    # outMediainfo describes the object that was written.
    written = kvs.data_dir / "buckets" / BUCKET / "out" / "private.mp4"
    truth = probe(written)
    assert info["format"]["size"] == written.stat().st_size == int(truth["format"]["size"])
    assert info["format"]["format_name"] == "mp4"
    assert info["format"]["bit_rate"] == truth["format"]["bit_rate"]
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    video, audio = info["streams"]
    assert (video["codec_type"], video["codec_name"], video["width"], video["height"]) == (
        "video",
        "h264",
        160,
        120,
    )
    assert (audio["codec_type"], audio["codec_name"], audio["sample_rate"]) == (
        "audio",
        "aac",
        44100,
    )
    assert [s["bit_rate"] for s in info["streams"]] == [
        int(s["bit_rate"]) for s in truth["streams"]
    ]

    # DstAcl and the content type are kept with the object, and the object server honours them.
    meta = kvs.data_dir / "buckets" / ".meta" / BUCKET / "out" / "private.mp4.json"
    assert json.loads(meta.read_text()) == {"acl": "private", "content_type": "video/mp4"}
    assert _http_status(f"{kvs.server.url}/objects/{BUCKET}/out/private.mp4")[0] in (403, 404)
    assert kvs.wait_task(public_id)["TaskStatus"] == "succ"
    status, content_type = _http_status(f"{kvs.server.url}/objects/{BUCKET}/out/public.mp4")
    assert (status, content_type) == (200, "video/mp4")

    # The command shown runs again as it is: the source's real path, not the sandbox's link.
    task = kvs.client.get_task_by_task_id(TaskID=task_id)["TaskInfo"]
    stored = str(kvs.data_dir / "buckets" / BUCKET / "in" / "short.mp4")
    assert task["Command"].startswith("ffmpeg ") and stored in task["Command"]
    assert "openkvs-source-" not in task["Command"]
    assert (task["TaskStatus"], task["Progress"]) == ("succ", 100) and "Log" not in task
    _assert_clean(kvs)


def _http_status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status), str(answer.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        return exc.code, ""


# -- sources and destinations that went away -----------------------------------------------


def test_source_or_bucket_deleted_after_create_task_is_2041_or_2033(kvs: Deployment) -> None:
    preset = _preset(kvs, "avt_light", LIGHT)
    _pause(kvs, True)
    try:
        gone_source = _create(kvs, preset, _src("vanishing"), "out/vanishing.mp4")
        gone_bucket = _create(kvs, preset, _src("short"), "out/x.mp4", DstBucket="doomed-before")
        (kvs.data_dir / "buckets" / BUCKET / "in" / "vanishing.mp4").unlink()
        shutil.rmtree(kvs.data_dir / "buckets" / "doomed-before")
    finally:
        _pause(kvs, False)
    info = _failed(kvs, gone_source, 2041)
    assert info["ErrorMsg"] == "file not exist"
    info = _failed(kvs, gone_bucket, 2033)
    assert info["ErrorMsg"] == "HTTP upload file fail"
    assert info["Command"] == ""  # refused before any ffmpeg ran
    _assert_clean(kvs)


def test_output_bucket_deleted_while_transcoding_is_2033(kvs: Deployment) -> None:
    preset = _preset(kvs, "avt_light", LIGHT)
    task_id = _create(kvs, preset, _src("medium"), "out/x.mp4", DstBucket="doomed-during")
    assert _ffmpeg_of(kvs), "ffmpeg never started"
    shutil.rmtree(kvs.data_dir / "buckets" / "doomed-during")
    info = _failed(kvs, task_id, 2033)
    assert info["Command"]  # it did run
    assert not (kvs.data_dir / "buckets" / "doomed-during").exists()
    _assert_clean(kvs)


# -- bad sources ---------------------------------------------------------------------------


def test_corrupt_source_is_3150_and_the_log_is_kept(kvs: Deployment) -> None:
    preset = _preset(kvs, "avt_light", LIGHT)
    tasks = [_create(kvs, preset, _src(name), f"out/{name}.mp4") for name in ("noise", "truncated")]
    for task_id in tasks:
        info = _failed(kvs, task_id, 3150)
        assert info["ErrorMsg"] == (
            "Trans Internal Error: Invalid data found when processing input"
        )
        assert "Log" not in info  # the operator's, never the API's
    shown = _shown(kvs, tasks[1])
    assert shown["ErrorCode"] == "3150"
    assert "Invalid data found when processing input" in shown["Log"]
    _assert_clean(kvs)


# -- stopping a running transcode ----------------------------------------------------------


def test_deleting_a_running_transcode_stops_ffmpeg_within_2_s(kvs: Deployment) -> None:
    preset = _preset(kvs, "avt_heavy", HEAVY)
    with CallbackReceiver() as receiver:
        task_id = _create(kvs, preset, _src("long"), "out/deleted.mp4", CbUrl=receiver.url)
        ffmpegs = _ffmpeg_of(kvs)
        assert ffmpegs, "ffmpeg never started"
        deadline = time.monotonic() + 10  # well into the transcode: its output is growing
        while not [p for p in _scratch_entries(kvs) if p.is_file()]:
            assert time.monotonic() < deadline, "no scratch file appeared"
            time.sleep(0.02)
        asked = time.monotonic()
        assert kvs.client.del_task_by_task_id(TaskID=task_id)["ErrNum"] == 0
        assert wait_until_gone(ffmpegs, timeout=5)
        stopped_after = time.monotonic() - asked
        assert stopped_after <= 2.0, f"ffmpeg still ran {stopped_after:.2f} s after the delete"
        [callback] = receiver.wait_for(1, timeout=30)
    assert (callback.json["Status"], callback.json["Details"]["errnum"]) == (4, 2005)
    assert callback.json["Details"]["errmsg"] == "task shutdown by user"
    info = kvs.wait_task(task_id)
    assert (info["TaskStatus"], info["ErrorCode"]) == ("fail", "2005")
    assert not (kvs.data_dir / "buckets" / BUCKET / "out" / "deleted.mp4").exists()
    _assert_clean(kvs)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["KILL", "TERM"])
def test_ffmpeg_killed_by_someone_else_is_3255(kvs: Deployment, signum: signal.Signals) -> None:
    preset = _preset(kvs, "avt_heavy", HEAVY)
    task_id = _create(kvs, preset, _src("long"), f"out/killed-{signum.name}.mp4")
    [proc] = _ffmpeg_of(kvs)
    time.sleep(0.3)
    os.kill(proc.pid, signum)
    info = _failed(kvs, task_id, 3255)
    assert info["ErrorMsg"] == (
        "Trans Internal Error: System Signal is caught and Slave proces is killed"
    )
    if signum == signal.SIGKILL:
        log = _shown(kvs, task_id)["Log"]
        # ffmpeg's own output, naming the source by its path (not the sandbox's link), then
        # what happened to it.
        assert str(kvs.data_dir / "buckets" / BUCKET / "in" / "long.mp4") in log
        assert "openkvs-source-" not in log
        assert log.rstrip().endswith("openkvs: ffmpeg killed by SIGKILL")
    _assert_clean(kvs)


# -- limits (process settings: the server is restarted with each) -------------------------


@pytest.mark.parametrize(
    ("setting", "value", "code", "message"),
    [
        ("OPENKVS_TASK_TIMEOUT", "2", 2038, "operation time out"),
        ("OPENKVS_MAX_OUTPUT_MB", "1", 2010, "String length illegal"),
        ("OPENKVS_FFMPEG_MAX_RSS_MB", "25", 2002, "machine reach max rss"),
    ],
    ids=["time", "output", "memory"],
)
def test_limits(deployment: Deployment, setting: str, value: str, code: int, message: str) -> None:
    kvs = deployment
    _restart(kvs, **{setting: value})
    preset = _preset(kvs, "avt_heavy", HEAVY)
    started = time.monotonic()
    task_id = _create(kvs, preset, _src("long"), "out/limited.mp4")
    info = _failed(kvs, task_id, code, timeout=30)
    assert info["ErrorMsg"] == message
    assert time.monotonic() - started < 15  # stopped, not run to its end (minutes)
    assert not (kvs.data_dir / "buckets" / BUCKET / "out" / "limited.mp4").exists()
    _assert_clean(kvs)


# -- a worker killed mid-transcode ---------------------------------------------------------


def test_kill_9_mid_transcode_then_restart_cleans_scratch_and_finishes(kvs: Deployment) -> None:
    preset = _preset(kvs, "avt_light", LIGHT)
    task_id = _create(kvs, preset, _src("medium"), "out/after-crash.mp4")
    ffmpegs = _ffmpeg_of(kvs)
    assert ffmpegs, "ffmpeg never started"
    dead = kvs.server.pid
    left = kvs.data_dir / "scratch" / f"{dead}-{task_id}"
    assert left.is_dir()
    kvs.server.kill9()
    assert wait_until_gone(ffmpegs)  # the kernel killed the worker's ffmpeg
    assert left.is_dir()  # nobody could remove it
    kvs.server.start()
    info = kvs.wait_task(task_id, timeout=60)
    assert info["TaskStatus"] == "succ", info
    assert not left.exists()  # removed at start: its process is dead
    _assert_clean(kvs)
    assert _source_links(dead) == []
    written = kvs.data_dir / "buckets" / BUCKET / "out" / "after-crash.mp4"
    assert probe(written)["streams"][0]["width"] == 160
