"""Progress callbacks (``worker.progress_callbacks``) against a real local HTTP receiver.

The sinks run their own delivery thread and the real ``HttpSender``; the receiver records
arrival times, so ordering, throttling and the final flush are observed as a receiver sees
them. The shortest interval a task may ask for is 1 s, so some tests take a few seconds.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import time
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook
from tests.support.receiver import CallbackReceiver, Request
from tests.support.stalling import StallingReceiver

from openkvs.model import NewTask, TaskRecord, TaskStatus
from openkvs.notify.policy import AddressPolicy
from openkvs.notify.sender import HttpSender
from openkvs.service.ids import new_task_id
from openkvs.storage.local import LocalStorage
from openkvs.store.database import open_engine
from openkvs.store.secrets import Sealer
from openkvs.store.tasks import TaskStore
from openkvs.store.users import UserStore
from openkvs.worker.job import Job, JobMaker, Phase, ProgressSink
from openkvs.worker.pool import PoolSettings, WorkerPool
from openkvs.worker.progress_callbacks import (
    DEFAULT_INTERVAL,
    MIN_INTERVAL,
    ProgressCallbacks,
    ProgressTarget,
    progress_target,
)

TASK_ID = "3f1c2a4b5d6e7f8091a2b3c4d5e6f70820240315"
SECRET = "whsec_" + base64.b64encode(b"progress-secret-key-0123").decode()
LOOPBACK = AddressPolicy((ip_network("127.0.0.0/8"),))
T, U = Phase.TRANSCODING, Phase.UPLOADING


def _task(
    ext: Any = None,
    *,
    options: dict[str, Any] | None = None,
    task_type: str = "avtrans",
    attempts: int = 1,
) -> TaskRecord:
    request: dict[str, Any] = {"ExtParam": ext if isinstance(ext, str) else json.dumps(ext or {})}
    if options is not None:
        request["options"] = options
    return TaskRecord(
        task_id=TASK_ID,
        user_id=7,
        action="CreateTask",
        task_type=task_type,
        preset="p",
        pipeline="usual",
        is_top=False,
        status=TaskStatus.EXEC,
        request=request,
        attempts=attempts,
    )


def _ext(url: str, interval: Any = 1) -> dict[str, Any]:
    return {"Callback": {"progress_cburl": url, "progress_cbmethod": "POST",
                         "progress_interval": interval}}  # fmt: skip


def _callbacks(policy: AddressPolicy = LOOPBACK, timeout: float = 2.0) -> ProgressCallbacks:
    return ProgressCallbacks(
        HttpSender(policy, timeout=timeout),
        policy=policy,
        timeout=timeout,
        secrets=lambda user_id: SECRET if user_id == 7 else "",
    )


@pytest.fixture
def callbacks() -> Iterator[ProgressCallbacks]:
    made = _callbacks()
    yield made
    made.close()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as rx:
        yield rx


def _sink(callbacks: ProgressCallbacks, task: TaskRecord) -> ProgressSink:
    sink = callbacks.sink(task)
    assert sink is not None
    return sink


def _states(requests: list[Request]) -> list[tuple[str, int]]:
    return [(r.json["Details"]["status"], r.json["Details"]["progress"]) for r in requests]


# -- what a task asks for ------------------------------------------------------------------


def test_target_from_ext_param_and_from_avtrans_options() -> None:
    assert progress_target(_task(_ext("http://h.example/p", 5))) == ProgressTarget(
        "http://h.example/p", 5.0
    )
    # avtrans stores its ExtParam parsed in request["options"]: that wins when it names a URL.
    stored = _task(
        _ext("http://ignored.example/"),
        options={"progress_url": "http://h.example/o", "progress_interval": 3},
    )
    assert progress_target(stored) == ProgressTarget("http://h.example/o", 3.0)
    # ExtParam given as an object (the API accepts one) is read the same way.
    as_object = _task()
    as_object.request["ExtParam"] = _ext("http://h.example/p", "2.5")
    assert progress_target(as_object) == ProgressTarget("http://h.example/p", 2.5)


@pytest.mark.parametrize(
    ("interval", "seconds"),
    [(None, DEFAULT_INTERVAL), ("", DEFAULT_INTERVAL), ("soon", DEFAULT_INTERVAL),
     (True, DEFAULT_INTERVAL), ("nan", DEFAULT_INTERVAL), (0, MIN_INTERVAL),
     (0.2, MIN_INTERVAL), (-5, MIN_INTERVAL), (30, 30.0)],
)  # fmt: skip
def test_interval_default_and_minimum(interval: Any, seconds: float) -> None:
    ext = _ext("http://h.example/p", interval)
    if interval is None:
        del ext["Callback"]["progress_interval"]
    target = progress_target(_task(ext))
    assert target is not None and target.interval == seconds


@pytest.mark.parametrize(
    "ext",
    ["", "not json", "[1]", json.dumps({}), json.dumps({"Callback": "x"}),
     json.dumps({"Callback": {}}), json.dumps({"Callback": {"progress_cburl": ""}}),
     json.dumps({"Callback": {"progress_cburl": 5}})],
)  # fmt: skip
def test_no_target_without_a_progress_url(ext: str, callbacks: ProgressCallbacks) -> None:
    assert progress_target(_task(ext)) is None
    assert callbacks.sink(_task(ext)) is None


# -- delivery -------------------------------------------------------------------------------


def test_throttled_in_order_and_flushed_on_close(
    callbacks: ProgressCallbacks, receiver: CallbackReceiver
) -> None:
    sink = _sink(callbacks, _task(_ext(receiver.url, 1)))
    sink.update(T, 0)  # the first goes at once
    receiver.wait_for(1, timeout=5)
    for percent in (10, 20, 30):  # within the interval: only the latest is sent, later
        sink.update(T, percent)
    sink.update(T, 25)  # lower within a status: never sent
    second = receiver.wait_for(2, timeout=5)
    assert _states(second) == [("transcoding", 0), ("transcoding", 30)]
    assert second[1].time - second[0].time >= 0.8 * MIN_INTERVAL
    sink.update(T, 100)
    sink.update(U, 0)
    sink.update(U, 100)
    sink.close()  # the rest goes now, in order
    got = receiver.requests
    assert _states(got) == [
        ("transcoding", 0),
        ("transcoding", 30),
        ("transcoding", 100),
        ("uploading", 100),
    ]
    sink.update(U, 100)  # after close: ignored
    receiver.assert_quiet(0.3)


def test_close_does_not_wait_out_the_interval(
    callbacks: ProgressCallbacks, receiver: CallbackReceiver
) -> None:
    sink = _sink(callbacks, _task(_ext(receiver.url, 60)))
    sink.update(T, 0)
    receiver.wait_for(1, timeout=5)
    sink.update(T, 50)
    sink.update(U, 100)
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < 3  # far less than the 60 s interval
    assert _states(receiver.requests) == [
        ("transcoding", 0),
        ("transcoding", 50),
        ("uploading", 100),
    ]


def test_a_finished_phase_keeps_its_last_value_and_gaps_are_kept(
    callbacks: ProgressCallbacks, receiver: CallbackReceiver
) -> None:
    sink = _sink(callbacks, _task(_ext(receiver.url, 1)))
    sink.update(T, 5)
    receiver.wait_for(1, timeout=5)
    sink.update(T, 60)
    sink.update(U, 0)  # transcoding 60 is still owed: it goes first, then uploading
    got = receiver.wait_for(3, timeout=5)
    assert _states(got) == [("transcoding", 5), ("transcoding", 60), ("uploading", 0)]
    gaps = [b.time - a.time for a, b in itertools.pairwise(got)]
    assert all(gap >= 0.8 * MIN_INTERVAL for gap in gaps), gaps
    sink.close()
    receiver.assert_quiet(0.3, count=3)  # nothing new was owed


def test_bodies_headers_and_signatures(
    callbacks: ProgressCallbacks, receiver: CallbackReceiver
) -> None:
    sink = _sink(callbacks, _task(_ext(receiver.url, 1), task_type="audiowave", attempts=2))
    sink.update(T, 0)
    receiver.wait_for(1, timeout=5)
    sink.update(T, 100)
    sink.close()
    got = receiver.requests
    assert [r.json for r in got] == [
        {"TaskID": TASK_ID, "Status": 2, "Type": "audiowave",
         "Details": {"status": "transcoding", "progress": 0}},
        {"TaskID": TASK_ID, "Status": 2, "Type": "audiowave",
         "Details": {"status": "transcoding", "progress": 100}},
    ]  # fmt: skip
    assert [r.headers["webhook-id"] for r in got] == [f"msg_{TASK_ID}_p2_1", f"msg_{TASK_ID}_p2_2"]
    for request in got:
        assert request.method == "POST" and request.path == "/callback"
        assert request.headers["content-type"] == "application/json"
        assert Webhook(SECRET).verify(request.body, request.headers) == request.json


def test_a_failed_post_is_logged_and_not_retried(
    callbacks: ProgressCallbacks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "openkvs.worker.progress_callbacks")
    with CallbackReceiver(statuses=[500, 200]) as rx:
        sink = _sink(callbacks, _task(_ext(rx.url, 1)))
        sink.update(T, 0)
        rx.wait_for(1, timeout=5)
        sink.update(T, 100)
        sink.close()
        assert _states(rx.requests) == [("transcoding", 0), ("transcoding", 100)]
        assert [r.status for r in rx.requests] == [500, 200]
    events = [(r.getMessage(), getattr(r, "task_id", None)) for r in caplog.records]
    assert events == [
        ("progress_callback_failed", TASK_ID),
        ("progress_callback_sent", TASK_ID),
    ]
    assert caplog.records[0].http_status == 500  # type: ignore[attr-defined]


def test_close_is_bounded_when_the_receiver_hangs(caplog: pytest.LogCaptureFixture) -> None:
    callbacks = _callbacks(timeout=1.0)
    try:
        with StallingReceiver() as slow, CallbackReceiver() as ok:
            sink = _sink(callbacks, _task(_ext(slow.url, 1)))
            sink.update(T, 0)
            slow.wait_for(1, timeout=5)
            sink.update(T, 100)
            started = time.monotonic()
            sink.close()
            assert time.monotonic() - started < 2.5  # the POST's deadline, then given up
            assert any(r.getMessage() == "progress_callback_failed" for r in caplog.records)
            # The delivery thread is not stuck: another task's callbacks still go.
            other = _sink(callbacks, _task(_ext(ok.url, 1)))
            other.update(U, 100)
            other.close()
            assert _states(ok.requests) == [("uploading", 100)]
    finally:
        callbacks.close()


def test_refused_addresses_are_never_posted(
    receiver: CallbackReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    strict = _callbacks(AddressPolicy())
    try:
        # A refused literal address: no sink at all.
        assert strict.sink(_task(_ext(receiver.url, 1))) is None
        # A name that resolves to a refused address: refused when connecting.
        named = _sink(strict, _task(_ext(f"http://localhost:{receiver.port}/callback", 1)))
        named.update(T, 0)
        named.update(T, 100)
        named.close()
    finally:
        strict.close()
    receiver.assert_quiet(0.2, count=0)
    errors = [getattr(r, "error", "") for r in caplog.records]
    assert errors and all(e.startswith("refused") for e in errors), errors


def test_no_sink_without_a_signing_secret(
    receiver: CallbackReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_user_id: int) -> str:
        raise LookupError("no such user")

    made = ProgressCallbacks(
        HttpSender(LOOPBACK, timeout=1), policy=LOOPBACK, timeout=1, secrets=broken
    )
    try:
        assert made.sink(_task(_ext(receiver.url, 1))) is None
    finally:
        made.close()
    assert [r.getMessage() for r in caplog.records] == ["progress_callback_failed"]


# -- with the worker pool -------------------------------------------------------------------


class _Steady:
    """An executor that reports transcoding progress in steps, then uploads."""

    def run(self, job: Job) -> list[dict[str, Any]]:
        job.report(T, 0)
        for percent in range(5, 101, 5):
            time.sleep(0.1)
            job.report(T, percent)
        job.report(U, 0)
        job.report(U, 100)
        return [{"dstpath": "k.json"}]


def test_the_pool_feeds_the_sink_and_the_task_row(
    tmp_path: Path, receiver: CallbackReceiver
) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}/db.sqlite")
    tasks = TaskStore(engine)
    user = UserStore(engine, Sealer(bytes(32))).ensure_user("u")
    task_id = new_task_id(time.time())
    tasks.create(
        NewTask(
            task_id=task_id,
            user_id=user.id,
            action="CreateWaveTask",
            task_type="audiowave",
            preset="wave",
            pipeline="usual",
            is_top=False,
            request={
                "DstBucket": "b",
                "DstObjectKey": "k.json",
                "ExtParam": json.dumps(_ext(receiver.url, 1)),
            },
        ),
        time.time(),
    )
    callbacks = ProgressCallbacks(
        HttpSender(LOOPBACK, timeout=2), policy=LOOPBACK, timeout=2, secrets=lambda _u: SECRET
    )
    pool = WorkerPool(
        tasks,
        {"audiowave": _Steady()},
        PoolSettings(workers=1, lease_seconds=0.9, max_attempts=1, poll_seconds=0.05),
        jobs=JobMaker(LocalStorage(tmp_path / "buckets"), tmp_path / "scratch", 60),
        sinks=callbacks.sink,
    )
    rows: list[int] = []
    pool.start()
    try:
        deadline = time.monotonic() + 15
        while True:
            task = tasks.get(task_id)
            assert task is not None and time.monotonic() < deadline
            if task.status is TaskStatus.SUCC:
                break
            rows.append(task.progress)
            time.sleep(0.05)
    finally:
        pool.stop()
        callbacks.close()
        engine.dispose()
    # The task row (GetTaskByTaskID's Progress) moved through intermediate values.
    assert any(0 < p < 100 for p in rows), rows
    assert rows == sorted(rows)
    states = _states(receiver.requests)
    transcoding = [p for s, p in states if s == "transcoding"]
    assert states[0] == ("transcoding", 0) and states[-1] == ("uploading", 100), states
    assert transcoding == sorted(set(transcoding)) and transcoding[-1] == 100, states
    assert any(0 < p < 100 for p in transcoding), states  # ~2 s of work, 1 s interval
    assert [s for s, _ in states].count("uploading") == 1, states
