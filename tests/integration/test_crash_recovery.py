"""Nothing acknowledged is lost when the service is killed with SIGKILL."""

from __future__ import annotations

import functools
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from tests.integration.conftest import deploy
from tests.support.processes import children_of, naming, reading, wait_for, wait_until_gone
from tests.support.receiver import CallbackReceiver


def _long_mp3(folder: Path, minutes: int) -> Path:
    """A long CBR mp3, made cheaply: one minute encoded once (without a Xing header, so
    the length is estimated from the size), then repeated frame-exactly by byte copy."""
    folder.mkdir(parents=True, exist_ok=True)
    minute = folder / "minute.mp3"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=f=330:d=60",
            "-af",
            "volume=0.5",
            "-ac",
            "2",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
            "-write_xing",
            "0",
            "-y",
            str(minute),
        ],
        check=True,
        timeout=120,
    )
    chunk = minute.read_bytes()
    out = folder / f"long-{minutes}.mp3"
    with out.open("wb") as f:
        for _ in range(minutes):
            f.write(chunk)
    return out


def _wait_status(deployment_client: object, task_id: str, status: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = deployment_client.get_task_by_task_id(TaskID=task_id)  # type: ignore[attr-defined]
        if info["TaskInfo"]["TaskStatus"] == status:
            return
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} never reached {status}")


def test_kill_9_while_running_then_restart_completes(tmp_path: Path) -> None:
    source = _long_mp3(tmp_path / "media", minutes=90)
    env = {"OPENKVS_WAVE_PARALLEL": "1", "OPENKVS_WORKERS": "1"}
    for kvs in deploy(tmp_path / "data", env):
        src = kvs.upload(source, "in/long.mp3")
        with CallbackReceiver() as receiver:
            task_id = kvs.create_wave(src, "out/long.json", CbUrl=receiver.url, points=500)
            task_id = task_id
            _wait_status(kvs.client, task_id, "exec", timeout=30)
            kvs.server.kill9()
            assert receiver.requests == []
            kvs.server.start()
            [callback] = receiver.wait_for(1, timeout=120)
            receiver.assert_quiet(1.0)
        assert callback.json["TaskID"] == task_id
        assert callback.json["Status"] == 3
        assert callback.json["Details"]["items"] == [{"dstpath": "out/long.json"}]
        info = kvs.wait_task(task_id)
        assert info["TaskStatus"] == "succ"
        log = kvs.server.log_path.read_text()
        assert "task_requeued" in log  # taken back from the dead process, not restarted blind
        assert f"task_claimed task_id={task_id} attempt=2" in log


@pytest.mark.slow
def test_restart_resumes_its_predecessors_task_without_waiting_for_the_lease(
    tmp_path: Path,
) -> None:
    lease = 600.0
    source = _long_mp3(tmp_path / "media", minutes=30)  # seconds of decoding
    env = {
        "OPENKVS_WAVE_PARALLEL": "1",
        "OPENKVS_WORKERS": "1",
        "OPENKVS_LEASE_SECONDS": f"{lease:g}",
    }
    for kvs in deploy(tmp_path / "data", env):
        key = f"in/restart-{uuid.uuid4().hex[:8]}.mp3"
        task_id = kvs.create_wave(kvs.upload(source, key), "out/restart.json", points=500)
        decoders = wait_for(functools.partial(children_of, kvs.server.pid, "ffmpeg"))
        assert decoders, "the waveform's ffmpeg never started"
        info = kvs.client.get_task_by_task_id(TaskID=task_id)["TaskInfo"]
        assert info["TaskStatus"] == "exec"
        killed_at = time.time()
        kvs.server.kill9()
        # The kernel kills the children of a dead worker: no ffmpeg/ffprobe is left.
        assert wait_until_gone(decoders)
        assert naming(key) == []
        assert reading(kvs.data_dir / "buckets" / "media" / key) == []
        kvs.server.start()
        info = kvs.wait_task(task_id, timeout=120)
        assert info["TaskStatus"] == "succ"
        # A logical bound, not a benchmark: without the take-back the task would stay in
        # exec until the 600 s lease ran out, far beyond the wait above.
        assert time.time() - killed_at < lease
        log = kvs.server.log_path.read_text()
        assert re.search(rf"task_requeued task_id={task_id} .*reason=owner_gone", log)
        assert "reason=lease_expired" not in log
        assert f"task_claimed task_id={task_id} attempt=2" in log


def test_sigterm_while_running_is_clean(tmp_path: Path) -> None:
    source = _long_mp3(tmp_path / "media", minutes=90)
    env = {"OPENKVS_WAVE_PARALLEL": "1", "OPENKVS_WORKERS": "1"}
    for kvs in deploy(tmp_path / "data", env):
        src = kvs.upload(source, "in/long.mp3")
        with CallbackReceiver() as receiver:
            task_id = kvs.create_wave(src, "out/long.json", CbUrl=receiver.url, points=100)
            _wait_status(kvs.client, task_id, "exec", timeout=30)
            assert kvs.server.stop() == 0
            log = kvs.server.log_path.read_text()
            assert "openkvs stopped" in log
            # Either it finished within the grace period or it went back to the queue.
            assert f"task_finished task_id={task_id}" in log or "task_released" in log
            kvs.server.start()
            [callback] = receiver.wait_for(1, timeout=120)
            receiver.assert_quiet(1.0)
        assert callback.json["Status"] == 3
        assert kvs.wait_task(task_id)["TaskStatus"] == "succ"


def test_pending_callback_is_delivered_after_restart(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    short = media / "short.ogg"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=d=1",
            "-c:a",
            "libvorbis",
            "-y",
            str(short),
        ],
        check=True,
        timeout=60,
    )
    for kvs in deploy(tmp_path / "data", {"OPENKVS_CALLBACK_BACKOFF": "1,1,1"}):
        src = kvs.upload(short, "in/short.ogg")
        with CallbackReceiver(statuses=[500]) as receiver:
            task_id = kvs.create_wave(src, "out/short.json", CbUrl=receiver.url, points=10)
            receiver.wait_for(1, timeout=60)
            time.sleep(0.3)  # let the failed attempt be recorded
            kvs.server.kill9()
            receiver.set_statuses([200])
            kvs.server.start()
            got = receiver.wait_for(2, timeout=60)
        assert got[-1].status == 200
        assert got[-1].json["TaskID"] == task_id
        assert got[-1].body == got[0].body


def test_a_task_over_its_time_limit_fails_with_2038(tmp_path: Path) -> None:
    source = _long_mp3(tmp_path / "media", minutes=90)
    env = {"OPENKVS_WAVE_PARALLEL": "1", "OPENKVS_TASK_TIMEOUT": "0.3"}
    for kvs in deploy(tmp_path / "data", env):
        task_id = kvs.create_wave(kvs.upload(source, "in/slow.mp3"), "out/slow.json")
        info = kvs.wait_task(task_id)
        assert (info["TaskStatus"], info["ErrorCode"], info["ErrorMsg"]) == (
            "fail",
            "2038",
            "operation time out",
        )
