"""Workers as a fleet: an API-only host and ``openkvs worker`` processes on one database.

Every process is real (``serve --no-workers``, ``openkvs worker``), on a shared SQLite data
folder or on PostgreSQL; the registry is read the way ``openkvs workers --json`` reads it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.support.fleet import ApiProcess, WorkerProcess, registry_rows, workers_json
from tests.support.kvs_client import close_kvs_client, make_kvs_client
from tests.support.media import make_audio
from tests.support.server import ServerProcess, child_env, cli, create_keys

from openkvs import __version__, config
from openkvs.store.database import open_engine
from openkvs.store.tasks import TaskStore

pytestmark = pytest.mark.slow

BUCKET = "media"
BASE_ENV = {
    "OPENKVS_LEASE_SECONDS": "3",
    "OPENKVS_POLL_SECONDS": "0.2",
    "OPENKVS_HEARTBEAT_SECONDS": "0.3",
    "OPENKVS_WORKERS": "2",
    "OPENKVS_WAVE_PARALLEL": "1",
    "OPENKVS_CALLBACK_ALLOW": "127.0.0.0/8,::1/128",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings of every process of the fleet: SQLite in the shared data folder, or
    one PostgreSQL database."""
    if request.param == "sqlite":
        return dict(BASE_ENV)
    return {**BASE_ENV, "OPENKVS_DATABASE_URL": str(request.getfixturevalue("pg_url"))}


def _prepare(data_dir: Path, env: dict[str, str], source: Path) -> tuple[str, str, str]:
    """Keys, the bucket, ``source`` in it; returns (access key, secret, source path)."""
    access_key, secret_key = create_keys(data_dir, env=env)
    assert cli(data_dir, "bucket", "create", BUCKET, env=env).returncode == 0
    key = f"in/{source.name}"
    # Into the local bucket's folder directly: one `openkvs cp` process less per test.
    (data_dir / "buckets" / BUCKET / "in").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, data_dir / "buckets" / BUCKET / key)
    return access_key, secret_key, f"/{BUCKET}/{key}"


@contextlib.contextmanager
def _client(api: ApiProcess, access_key: str, secret_key: str) -> Iterator[Any]:
    client = make_kvs_client(api.url, access_key, secret_key)
    try:
        yield client
    finally:
        close_kvs_client(client)


def _wave(client: Any, src: str, key: str, **extra: Any) -> str:
    reply = client.create_wave_task(
        Preset="wave", SrcInfo=[{"path": src}], DstBucket=BUCKET, DstObjectKey=key, points=10,
        **extra,
    )  # fmt: skip
    assert reply["ErrNum"] == 0, reply
    return str(reply["TaskID"])


def _status(client: Any, task_id: str) -> str:
    return str(client.get_task_by_task_id(TaskID=task_id)["TaskInfo"]["TaskStatus"])


def _until(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _finished(client: Any, task_id: str) -> str:
    return str(_until(lambda: (status := _status(client, task_id)) in ("succ", "fail") and status))


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_audio(tmp_path_factory.mktemp("fleet"), "short", fmt="wav", seconds=2)


def test_workers_register_and_take_only_their_pipelines(
    tmp_path: Path, env: dict[str, str], short_wav: Path
) -> None:
    data = tmp_path / "data"
    access_key, secret_key, src = _prepare(data, env, short_wav)
    fast_args = ("--pipelines", "fast", "--concurrency", "1")
    with (
        ApiProcess(data, env) as api,
        WorkerProcess(data, env, *fast_args, name="fast") as fast,
        _client(api, access_key, secret_key) as client,
    ):
        assert client.update_pipeline(PipelineName="fast", State="Active")["ErrNum"] == 0
        # Older than the fast ones: a worker ignoring its pipelines would take it first.
        other = _wave(client, src, "out/other.json")
        mine = [_wave(client, src, f"out/fast-{n}.json", Pipeline="fast") for n in range(3)]
        assert [_finished(client, t) for t in mine] == ["succ"] * 3
        assert _status(client, other) == "init"
        [row] = workers_json(data, env)  # the API-only host runs no worker: not listed
        assert (row["pid"], row["state"], row["pipelines"], row["concurrency"]) == (
            fast.pid,
            "alive",
            ["fast"],
            1,
        )
        assert row["version"] == __version__ and "audiowave" in row["task_types"]

        with WorkerProcess(data, env, name="any") as anyone:
            assert _finished(client, other) == "succ"
            listed = {r["pid"]: r for r in registry_rows(data, env)}
            shown = {p: (r["state"], r["pipelines"], r["concurrency"]) for p, r in listed.items()}
            assert shown == {fast.pid: ("alive", ["fast"], 1), anyone.pid: ("alive", [], 2)}
            assert listed[fast.pid]["host"] == listed[anyone.pid]["host"]
            assert listed[anyone.pid]["heartbeat_age"] >= 0
        assert anyone.process is not None and anyone.process.returncode == 0
        assert f"task_claimed task_id={other}" in anyone.log()
        assert f"task_claimed task_id={other}" not in fast.log()
    # --concurrency 1: the fast worker ran its tasks one after the other.
    runs = sorted(_run_times(data, env, mine))
    assert all(ended <= started for (_, ended), (started, _) in itertools.pairwise(runs))
    assert registry_rows(data, env) == []  # each clean stop deleted its row


def _run_times(data: Path, env: dict[str, str], task_ids: list[str]) -> list[tuple[float, float]]:
    settings = config.load(child_env(data.resolve(), env))
    engine = open_engine(settings.sqlalchemy_url)
    try:
        found = [TaskStore(engine).get(t) for t in task_ids]
    finally:
        engine.dispose()
    return [(t.started_at or 0.0, t.finished_at or 0.0) for t in found if t is not None]


class _Gate:
    """A progress-callback receiver that holds every request until ``open()``: the task
    that sends it cannot end before (its last progress goes before its completion)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self._open = threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                gate.arrived.set()
                gate._open.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/progress"

    def open(self) -> None:
        self._open.set()

    def __enter__(self) -> _Gate:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.open()
        self._server.shutdown()
        self._server.server_close()


def test_sigterm_drains_a_running_task_to_its_end(tmp_path: Path, short_wav: Path) -> None:
    data = tmp_path / "data"
    # The task cannot end before the gate opens: its last progress callback is held.
    env = {
        **BASE_ENV,
        "OPENKVS_DRAIN_SECONDS": "120",
        "OPENKVS_CALLBACK_TIMEOUT": "60",
        "OPENKVS_LEASE_SECONDS": "60",
    }
    access_key, secret_key, src = _prepare(data, env, short_wav)
    with (
        ApiProcess(data, env) as api,
        _Gate() as gate,
        WorkerProcess(data, env, name="drained") as worker,
        _client(api, access_key, secret_key) as client,
    ):
        ext = {"Callback": {"progress_cburl": gate.url}}
        task_id = _wave(client, src, "out/drained.json", ExtParam=json.dumps(ext))
        assert gate.arrived.wait(30)
        _until(lambda: (worker.row() or {}).get("running") == [task_id])
        worker.terminate()
        row = _until(lambda: (r := worker.row()) and r["state"] == "draining" and r)
        assert row["running"] == [task_id]
        assert _status(client, task_id) == "exec"
        gate.open()
        assert worker.wait() == 0
        assert _status(client, task_id) == "succ"
    assert registry_rows(data, env) == []
    assert "openkvs worker stopped" in worker.log()


def _long_mp3(folder: Path, minutes: int) -> Path:
    """A long CBR mp3, made cheaply: one minute of a tone encoded once (without a Xing
    header), then repeated frame-exactly by byte copy."""
    folder.mkdir(parents=True, exist_ok=True)
    minute = folder / "minute.mp3"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "sine=f=330:d=60",
            "-ac", "2", "-c:a", "libmp3lame", "-b:a", "64k", "-write_xing", "0", "-y",
            str(minute),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    out = folder / f"long-{minutes}.mp3"
    out.write_bytes(minute.read_bytes() * minutes)
    return out


def test_tasks_over_the_drain_time_go_back_to_the_queue(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**BASE_ENV, "OPENKVS_DRAIN_SECONDS": "0.5", "OPENKVS_WORKERS": "1"}
    source = _long_mp3(tmp_path / "media", minutes=90)  # seconds of decoding
    access_key, secret_key, src = _prepare(data, env, source)
    with (
        ApiProcess(data, env) as api,
        WorkerProcess(data, env, name="released") as worker,
        _client(api, access_key, secret_key) as client,
    ):
        task_id = _wave(client, src, "out/long.json")
        _until(lambda: (worker.row() or {}).get("running") == [task_id])
        worker.terminate()
        assert worker.wait() == 0
        assert _status(client, task_id) == "init"  # back in the queue, not failed
    assert f"task_released task_id={task_id}" in worker.log()
    assert registry_rows(data, env) == []


def test_a_killed_worker_is_shown_lost(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**BASE_ENV, "OPENKVS_LEASE_SECONDS": "1", "OPENKVS_HEARTBEAT_SECONDS": "0.2"}
    with WorkerProcess(data, env, name="doomed") as worker:
        assert (worker.row() or {}).get("state") == "alive"
        worker.kill9()
        _until(lambda: [r["state"] for r in registry_rows(data, env)] == ["lost"])
    [row] = workers_json(data, env)
    assert (row["pid"], row["state"]) == (worker.pid, "lost")
    shown = cli(data, "workers", env=env)
    assert shown.returncode == 0, shown.stderr
    header, line = shown.stdout.splitlines()
    assert header.split() == [
        "ID", "HOST", "STATE", "PIPELINES", "CONCURRENCY", "RUNNING", "VERSION", "STARTED",
        "HEARTBEAT",
    ]  # fmt: skip
    assert line.split()[2:7] == ["lost", "*", "2", "0", __version__]


def test_serve_registers_its_pool_and_unregisters_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, BASE_ENV) as server:
        row = _until(lambda: [r for r in registry_rows(data, BASE_ENV) if r["pid"] == server.pid])
        assert row[0]["state"] == "alive" and row[0]["concurrency"] == 2
        assert server.stop() == 0
    assert registry_rows(data, BASE_ENV) == []
