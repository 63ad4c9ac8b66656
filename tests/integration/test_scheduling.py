"""Queue order, pipelines (pause, quota) and stopping a running task, end to end."""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.conftest import BUCKET, Deployment, deploy
from tests.integration.test_crash_recovery import _long_mp3, _wait_status
from tests.support.media import make_audio
from tests.support.processes import reading
from tests.support.receiver import CallbackReceiver


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    env = {"OPENKVS_WORKERS": "1", "OPENKVS_WAVE_PARALLEL": "1"}
    yield from deploy(tmp_path_factory.mktemp("one-worker"), env)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    env = {"OPENKVS_WORKERS": "2", "OPENKVS_WAVE_PARALLEL": "1"}
    yield from deploy(tmp_path_factory.mktemp("two-workers"), env)


def _wave(kvs: Deployment, src: str, cb_url: str, **extra: object) -> str:
    return kvs.create_wave(src, "out/q.json", points=50, CbUrl=cb_url, **extra)


def _pipeline(kvs: Deployment, **params: object) -> None:
    reply = kvs.client.update_pipeline(PipelineName="usual", **params)
    assert reply["ErrNum"] == 0, reply


def test_topped_tasks_start_first_and_pause_holds_the_queue(
    one_worker: Deployment, tmp_path: Path
) -> None:
    kvs = one_worker
    src = kvs.upload(make_audio(tmp_path, "q", fmt="ogg", seconds=1), "in/q.ogg")
    _pipeline(kvs, State="Paused")
    try:
        with CallbackReceiver() as receiver:
            ids = [_wave(kvs, src, receiver.url, IsTop=1 if n == 5 else 0) for n in range(20)]
            top = kvs.client.top_task_by_task_id(TaskID=ids[12])
            assert top["ErrNum"] == 0, top
            receiver.assert_quiet(1.5, count=0)  # paused: nothing starts
            listed = kvs.client.get_task_list(TaskStatus="init", Limit=100)
            assert listed["Total"] == 20
            info = kvs.client.get_task_by_task_id(TaskID=ids[12])["TaskInfo"]
            assert info["IsTop"] == "1" and info["TaskStatus"] == "init"
            _pipeline(kvs, State="Active")
            got = receiver.wait_for(20, timeout=120)
    finally:
        _pipeline(kvs, State="Active")
    order = [r.json["TaskID"] for r in got]
    assert order[:2] == [ids[5], ids[12]]
    assert order[2:] == [i for i in ids if i not in (ids[5], ids[12])]


def _runs(data_dir: Path, ids: list[str]) -> list[tuple[float, float]]:
    """(started_at, finished_at) of the tasks, read from the service's own database."""
    with sqlite3.connect(data_dir / "openkvs.db") as db:
        marks = ",".join("?" * len(ids))
        rows = db.execute(
            f"SELECT started_at, finished_at FROM tasks WHERE task_id IN ({marks})", ids
        ).fetchall()
    return sorted((float(a), float(b)) for a, b in rows)


def _burst(kvs: Deployment, src: str, count: int, **settings: object) -> list[str]:
    """Queue ``count`` tasks while the pipeline is paused, then open it with ``settings``
    so that every worker competes for them at once; returns when all called back."""
    _pipeline(kvs, State="Paused")
    try:
        with CallbackReceiver() as receiver:
            ids = [_wave(kvs, src, receiver.url) for _ in range(count)]
            _pipeline(kvs, State="Active", **settings)
            receiver.wait_for(count, timeout=120)
    finally:
        _pipeline(kvs, State="Active", Quota=10)
    return ids


def _overlaps(runs: list[tuple[float, float]]) -> bool:
    return any(start < end for (_, end), (start, _) in itertools.pairwise(runs))


def test_quota_one_never_runs_two_at_once(two_workers: Deployment, tmp_path: Path) -> None:
    kvs = two_workers
    src = kvs.upload(make_audio(tmp_path, "quota", fmt="mp3", seconds=60), "in/quota.mp3")
    ids = _burst(kvs, src, 6, Quota=1)
    runs = _runs(kvs.data_dir, ids)
    assert not _overlaps(runs), f"two tasks of the user ran at once: {runs}"
    # The same burst with the default quota does run two at once on two workers.
    assert _overlaps(_runs(kvs.data_dir, _burst(kvs, src, 6)))


def _ffmpeg_reading(kvs: Deployment, key: str) -> list[int]:
    """ffmpeg processes with the object open (they are handed a link, not its path)."""
    return [p.pid for p in reading(kvs.data_dir / "buckets" / BUCKET / key) if p.name == "ffmpeg"]


def test_deleting_a_running_task_kills_ffmpeg_and_calls_back_2005(
    one_worker: Deployment, tmp_path: Path
) -> None:
    kvs = one_worker
    src = kvs.upload(_long_mp3(tmp_path, minutes=90), "in/delete-me.mp3")
    with CallbackReceiver() as receiver:
        task_id = _wave(kvs, src, receiver.url)
        _wait_status(kvs.client, task_id, "exec", timeout=30)
        deadline = time.monotonic() + 10
        while not _ffmpeg_reading(kvs, "in/delete-me.mp3") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _ffmpeg_reading(kvs, "in/delete-me.mp3"), "ffmpeg never started"
        asked = time.monotonic()
        assert kvs.client.del_task_by_task_id(TaskID=task_id)["ErrNum"] == 0
        while _ffmpeg_reading(kvs, "in/delete-me.mp3") and time.monotonic() - asked < 5:
            time.sleep(0.01)
        stopped_after = time.monotonic() - asked
        assert not _ffmpeg_reading(kvs, "in/delete-me.mp3")
        assert stopped_after <= 2.0, f"ffmpeg still ran {stopped_after:.2f} s after the delete"
        [callback] = receiver.wait_for(1, timeout=30)
    assert callback.json["Status"] == 4
    assert callback.json["Details"]["errnum"] == 2005
    assert callback.json["Details"]["errmsg"] == "task shutdown by user"
    info = kvs.client.get_task_by_task_id(TaskID=task_id)["TaskInfo"]
    assert (info["TaskStatus"], info["ErrorCode"]) == ("fail", "2005")
    assert kvs.client.del_task_by_task_id(TaskID=task_id)["ErrNum"] == 1205
    assert kvs.client.top_task_by_task_id(TaskID=task_id)["ErrNum"] == 1205


def test_deleting_a_queued_task_removes_it(one_worker: Deployment, tmp_path: Path) -> None:
    kvs = one_worker
    src = kvs.upload(make_audio(tmp_path, "gone", fmt="ogg", seconds=1), "in/gone.ogg")
    _pipeline(kvs, State="Paused")
    try:
        with CallbackReceiver() as receiver:
            task_id = _wave(kvs, src, receiver.url)
            assert kvs.client.del_task_by_task_id(TaskID=task_id)["ErrNum"] == 0
            _pipeline(kvs, State="Active")
            receiver.assert_quiet(1.0, count=0)
    finally:
        _pipeline(kvs, State="Active")
    assert kvs.client.get_task_by_task_id(TaskID=task_id)["ErrNum"] == 1200
    assert kvs.client.del_task_by_task_id(TaskID=task_id)["ErrNum"] == 1200
    listed = kvs.client.get_task_list(Limit=100)["TaskInfo"]
    assert task_id not in {t["TaskID"] for t in listed}
