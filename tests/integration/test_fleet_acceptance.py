"""A fleet at work under faults: 60 mixed tasks, each ending exactly once.

On PostgreSQL and moto's S3 server: one API-only process and three ``openkvs worker``
processes, every process reaching PostgreSQL through a TCP proxy the test can cut. While the
tasks run, a worker is killed with ``kill -9`` in the middle of a transcode and the database
is cut for 10 seconds. On SQLite and local storage (the default), the same tasks run in one
``openkvs serve``, which is killed with ``kill -9`` mid-transcode and started again.

Either way every task must end exactly once: one final status (``succ``, ``fail`` with 2005
for the deleted running ones, or gone for those deleted while queued) and, for each task
that ended, exactly one final callback (Status 3 or 4; one ``webhook-id``, which a process
killed while sending it may send again after its restart).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from tests.support.fleet import ApiProcess, WorkerProcess, registry_rows
from tests.support.kvs_client import close_kvs_client, make_kvs_client
from tests.support.media import make_audio, make_video
from tests.support.moto_s3 import MotoS3, unique_prefix
from tests.support.receiver import CallbackReceiver
from tests.support.server import ServerProcess, cli, create_keys
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.slow

BUCKET = "media"
TASKS = 60
ENV = {
    "OPENKVS_LEASE_SECONDS": "4",
    "OPENKVS_POLL_SECONDS": "0.5",
    "OPENKVS_HEARTBEAT_SECONDS": "0.5",
    "OPENKVS_CALLBACK_BACKOFF": "0.5,0.5,1,1,2,2,4,4",
    "OPENKVS_CALLBACK_ALLOW": "127.0.0.0/8,::1/128",
    "OPENKVS_WAVE_PARALLEL": "1",
    "OPENKVS_FFMPEG_THREADS": "1",
    "OPENKVS_MAX_ATTEMPTS": "5",
}
FINAL = ("succ", "fail")
#: The avtrans tasks (by creation number) that transcode the long source.
LONG = (2, 26, 50)
_names = itertools.count(1)


@dataclass
class Fleet:
    """What the scenario drives: a client, a receiver and the processes' faults."""

    data_dir: Path
    env: dict[str, str]
    client: Any
    receiver: CallbackReceiver
    kill_transcoder: Callable[[], None]  # kill -9 the process running a transcode (and recover)
    cut_database: Callable[[], None] | None = None  # cut the database for 10 s, then restore
    created: dict[str, str] = field(default_factory=dict)  # TaskID → kind


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fleet-media")
    return {
        "clip": make_video(folder, "clip", seconds=2, size="160x120", rate=15),
        # Long enough that a transcode of it is still running when its worker is killed.
        "long": make_video(folder, "long", seconds=40, size="320x240", rate=25),
        "audio": make_audio(folder, "tone", seconds=3, fmt="m4a"),
    }


def _upload(data_dir: Path, env: dict[str, str], path: Path, key: str) -> str:
    run = cli(data_dir, "cp", str(path), f"/{BUCKET}/{key}", env=env)
    assert run.returncode == 0, run.stderr
    return f"/{BUCKET}/{key}"


def _preset(client: Any, ptype: str, param: dict[str, Any]) -> str:
    name = f"{ptype}{next(_names)}"
    reply = client.preset(Preset=name, PresetType=ptype, Param=param)
    assert reply["ErrNum"] == 0, reply
    return name


def _run_scenario(fleet: Fleet, paths: dict[str, str]) -> None:
    client, url = fleet.client, fleet.receiver.url
    presets = {
        "avinfo": _preset(client, "avinfo", {}),
        "avtrans": _preset(
            client,
            "avtrans",
            {
                "f": "mp4",
                "VIDEO": {"vr": 15, "vb": "200k", "vcodec": "h264"},
                "AUDIO": {"acodec": "aac", "ab": "64k"},
            },
        ),
        "avsnapshot": _preset(client, "avsnapshot", {"ss": 1, "f": "jpg"}),
    }

    def create(kind: str, n: int) -> str:
        if kind == "wave":
            reply = client.create_wave_task(
                Preset="wave", SrcInfo=[{"path": paths["audio"]}], DstBucket=BUCKET,
                DstObjectKey=f"out/wave/{n}.json", points=20, CbUrl=url, CbMethod="POST",
            )  # fmt: skip
        else:
            long = kind == "avtrans" and n in LONG
            src = paths["long"] if long else paths["clip"]
            ext = {"avtrans": "mp4", "avsnapshot": "jpg", "avinfo": "json"}[kind]
            reply = client.create_task(
                Preset=presets[kind], SrcInfo=[{"path": src}], DstBucket=BUCKET,
                DstObjectKey=f"out/{kind}/{n}.{ext}", CbUrl=url, CbMethod="POST",
            )  # fmt: skip
        assert reply["ErrNum"] == 0, reply
        fleet.created[str(reply["TaskID"])] = "long" if kind == "avtrans" and n in LONG else kind
        return str(reply["TaskID"])

    kinds = ["avinfo", "wave", "avtrans", "avsnapshot"]
    ids = [create(kinds[n % 4], n) for n in range(TASKS)]
    # Top a few late ones and delete a few: some still queued, some perhaps running.
    for task_id in ids[-6:-3]:
        assert client.top_task_by_task_id(TaskID=task_id)["ErrNum"] in (0, 1205)
    deleted = ids[-3:] + ids[5:7]
    for task_id in deleted:
        assert client.del_task_by_task_id(TaskID=task_id)["ErrNum"] in (0, 1205)

    fleet.kill_transcoder()
    if fleet.cut_database is not None:
        fleet.cut_database()
    client = fleet.client  # a new one when the server was restarted

    deadline = time.monotonic() + 300
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        for task_id in list(pending):
            reply = client.get_task_by_task_id(TaskID=task_id)
            if reply.get("ErrNum") == 1200:  # deleted while queued: gone
                pending.discard(task_id)
                continue
            if reply["TaskInfo"]["TaskStatus"] in FINAL:
                pending.discard(task_id)
        time.sleep(0.5)
    assert not pending, f"{len(pending)} tasks never ended: {sorted(pending)[:5]}"

    # Every task that ended has exactly one final callback, with its final status. One
    # callback is one ``webhook-id``: a process killed while it was sending one sends it
    # again after its restart (at-least-once delivery of that one callback), never a second.
    time.sleep(3)  # a duplicate, if any, would arrive within the retry backoff
    finals: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for request in fleet.receiver.requests:
        body = request.json if isinstance(request.json, dict) else {}
        message = request.headers.get("webhook-id", "")
        assert message, request.headers
        if body.get("Status") in (3, 4) and message not in seen:
            seen.add(message)
            finals.setdefault(str(body.get("TaskID")), []).append(body)
    for task_id in ids:
        reply = client.get_task_by_task_id(TaskID=task_id)
        if reply.get("ErrNum") == 1200:
            assert task_id in deleted
            assert task_id not in finals, "a task deleted while queued was called back"
            continue
        info = reply["TaskInfo"]
        got = finals.get(task_id, [])
        assert len(got) == 1, (task_id, fleet.created[task_id], info, got)
        if task_id in deleted and info["TaskStatus"] == "fail":
            assert int(info["ErrorCode"]) == 2005, info
            continue
        assert info["TaskStatus"] == "succ", (fleet.created[task_id], info)
        assert info["TaskID"] == task_id
        assert got[0]["Status"] == 3


@contextlib.contextmanager
def _client(url: str, keys: tuple[str, str]) -> Iterator[Any]:
    client = make_kvs_client(url, *keys)
    try:
        yield client
    finally:
        close_kvs_client(client)


def _running_transcode(rows: list[dict[str, Any]], created: dict[str, str]) -> int | None:
    """The pid of a worker that runs a transcode now, from registry rows."""
    for row in rows:
        if any(created.get(task_id) == "long" for task_id in row.get("running", [])):
            return int(row["pid"])
    return None


def _wait_for(what: Callable[[], Any], timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(message)


def test_postgresql_s3_fleet_survives_kill_and_outage(
    tmp_path: Path, pg_url: str, moto_s3: MotoS3, sources: dict[str, Path]
) -> None:
    parts = urlsplit(pg_url)
    target = (parts.hostname or "127.0.0.1", parts.port or 5432)
    with TcpProxy(target) as proxy, CallbackReceiver() as receiver:
        proxied = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
        env = {
            **ENV,
            **moto_s3.env(bucket_prefix=unique_prefix()),
            "OPENKVS_DATABASE_URL": proxied,
            "OPENKVS_WORKERS": "2",
        }
        data_dir = tmp_path / "fleet"
        keys = create_keys(data_dir, env=env)
        assert cli(data_dir, "bucket", "create", BUCKET, env=env).returncode == 0
        paths = {name: _upload(data_dir, env, path, f"in/{path.name}") for name, path in
                 sources.items()}  # fmt: skip
        workers = [WorkerProcess(data_dir, env, name=f"worker{n}") for n in range(3)]
        with ApiProcess(data_dir, env) as api, contextlib.ExitStack() as stack:
            for worker in workers:
                stack.enter_context(worker)
            fleet: Fleet

            def kill_transcoder() -> None:
                pid = _wait_for(
                    lambda: _running_transcode(registry_rows(data_dir, env), fleet.created),
                    120,
                    "no worker ran a transcode",
                )
                victim = next(w for w in workers if w.pid == pid)
                victim.kill9()

            def cut_database() -> None:
                proxy.cut()
                try:
                    time.sleep(3)
                    # The API answers a gateway error meanwhile (503), never a 500.
                    with pytest.raises(Exception, match="ServiceUnavailable") as refused:
                        fleet.client.get_task_list()
                    assert "database" in str(refused.value)
                    time.sleep(7)
                finally:
                    proxy.restore()

            with _client(api.url, keys) as client:
                fleet = Fleet(data_dir, env, client, receiver, kill_transcoder, cut_database)
                _run_scenario(fleet, paths)
            for worker in workers:
                if worker.process is not None and worker.process.poll() is None:
                    assert "Traceback" not in worker.log(), worker.log()[-3000:]


def test_sqlite_local_single_process_survives_kill(
    tmp_path: Path, sources: dict[str, Path]
) -> None:
    env = {**ENV, "OPENKVS_WORKERS": "3"}
    data_dir = tmp_path / "one"
    keys = create_keys(data_dir, env=env)
    assert cli(data_dir, "bucket", "create", BUCKET, env=env).returncode == 0
    paths = {name: _upload(data_dir, env, path, f"in/{path.name}") for name, path in
             sources.items()}  # fmt: skip
    with CallbackReceiver() as receiver, ServerProcess(data_dir, env) as server:
        fleet: Fleet

        def kill_transcoder() -> None:
            _wait_for(
                lambda: _running_transcode(registry_rows(data_dir, env), fleet.created),
                120,
                "the server ran no transcode",
            )
            server.kill9()
            server.start()  # its successor takes back the dead process's tasks at once
            fleet.client = make_kvs_client(server.url, *keys)

        with _client(server.url, keys) as client:
            fleet = Fleet(data_dir, env, client, receiver, kill_transcoder)
            try:
                _run_scenario(fleet, paths)
            finally:
                if fleet.client is not client:
                    close_kvs_client(fleet.client)
