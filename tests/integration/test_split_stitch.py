"""Split-and-stitch: a long transcode made in parts by several worker processes.

Real processes on one SQLite data folder: ``openkvs serve`` with one embedded worker and
``openkvs worker`` processes, all with splitting on (a low ``OPENKVS_SPLIT_MIN_SECONDS``),
plus, for the reference, one worker with splitting off that serves its own pipeline. The
source is a 2-minute lavfi clip (320x180, 25 fps, a keyframe every 2 s, a tone).
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from tests.integration.conftest import FAST_ENV
from tests.support.avcheck import packets, psnr
from tests.support.fleet import WorkerProcess
from tests.support.kvs_client import close_kvs_client, make_kvs_client
from tests.support.server import ServerProcess, cli, create_keys

from openkvs.config import Settings, load
from openkvs.errors import TaskError
from openkvs.model import NewTask, TaskRecord
from openkvs.parts import PART_TYPE, part_task_id
from openkvs.presets.avtrans import AvtransOptions, parse
from openkvs.presets.codec import dump
from openkvs.service.ids import new_task_id
from openkvs.storage.local import LocalStorage
from openkvs.store.schema import tasks as tasks_table
from openkvs.store.secrets import Sealer
from openkvs.store.tasks import TaskStore
from openkvs.store.users import UserStore
from openkvs.worker.split import split_executors
from openkvs.worker.testing import job_for

pytestmark = pytest.mark.slow

BUCKET = "media"
SPLIT = {
    **FAST_ENV,
    "OPENKVS_WORKERS": "1",
    "OPENKVS_FFMPEG_THREADS": "1",
    "OPENKVS_SPLIT_MIN_SECONDS": "40",
    "OPENKVS_SPLIT_CHUNK_SECONDS": "20",
    "OPENKVS_WORKER_PIPELINES": "usual",
}
#: The reference worker: no splitting, only the pipeline "ref".
SINGLE = {**SPLIT, "OPENKVS_SPLIT_MIN_SECONDS": "0", "OPENKVS_WORKER_PIPELINES": "ref"}
PRESET = {"f": "mp4", "VIDEO": {"preset": "veryfast", "crf": 26}, "AUDIO": {"ab": "64k"}}
SECONDS, FPS = 120, 25


def make_source(folder: Path, seconds: int = SECONDS, size: str = "320x180") -> Path:
    """An MP4 of ``seconds``: testsrc2 at 25 fps with a keyframe every 2 s, and a tone."""
    out = folder / "long.mp4"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "50",
            "-keyint_min", "50", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "64k", "-threads", "2", str(out),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return out


@dataclass
class Fleet:
    data_dir: Path
    client: Any
    server: ServerProcess
    src: str

    def transcode(self, key: str, pipeline: str = "usual", **extra: Any) -> str:
        reply = self.client.create_task(
            Preset="long",
            SrcInfo=[{"path": self.src}],
            DstBucket=BUCKET,
            DstObjectKey=key,
            Pipeline=pipeline,
            **extra,
        )
        assert reply["ErrNum"] == 0, reply
        return str(reply["TaskID"])

    def wait(self, task_id: str, timeout: float = 150.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = dict(self.client.get_task_by_task_id(TaskID=task_id)["TaskInfo"])
            if info["TaskStatus"] in ("succ", "fail"):
                return info
            assert time.monotonic() < deadline, info
            time.sleep(0.2)

    def download(self, key: str, dest: Path) -> Path:
        run = cli(self.data_dir, "cp", f"/{BUCKET}/{key}", str(dest), env=SPLIT)
        assert run.returncode == 0, run.stderr
        return dest

    def rows(self, parent: str) -> list[sqlite3.Row]:
        """The part rows of ``parent``, read from the service's database."""
        with sqlite3.connect(self.data_dir / "openkvs.db") as db:
            db.row_factory = sqlite3.Row
            return db.execute(
                "SELECT * FROM tasks WHERE parent_id = ? ORDER BY task_id", (parent,)
            ).fetchall()


def _prepare(data_dir: Path, source: Path) -> tuple[str, str, str]:
    access_key, secret_key = create_keys(data_dir, env=SPLIT)
    assert cli(data_dir, "bucket", "create", BUCKET, env=SPLIT).returncode == 0
    run = cli(data_dir, "cp", str(source), f"/{BUCKET}/in/long.mp4", env=SPLIT)
    assert run.returncode == 0, run.stderr
    return access_key, secret_key, f"/{BUCKET}/in/long.mp4"


@contextlib.contextmanager
def fleet(data_dir: Path, source: Path, *, workers: int) -> Iterator[Fleet]:
    """``serve`` (one worker) and ``workers`` more ``openkvs worker`` processes, all
    splitting, and the reference worker; the preset ``long`` and the pipeline ``ref``."""
    access_key, secret_key, src = _prepare(data_dir, source)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(ServerProcess(data_dir, SPLIT))
        for n in range(workers):
            stack.enter_context(
                WorkerProcess(data_dir, SPLIT, "--concurrency", "1", name=f"worker-{n}")
            )
        client = make_kvs_client(server.url, access_key, secret_key)
        stack.callback(close_kvs_client, client)
        reply = client.preset(Preset="long", PresetType="avtrans", Param=PRESET)
        assert reply["ErrNum"] == 0, reply
        reply = client.update_pipeline(PipelineName="ref", State="Active")
        assert reply["ErrNum"] == 0, reply
        yield Fleet(data_dir, client, server, src)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_source(tmp_path_factory.mktemp("split-media"))


def _ends(path: Path) -> tuple[float, float, int]:
    """(video end, audio end, video frames) of an output, from its packets."""
    video, audio = packets(path, "v:0"), packets(path, "a:0")
    return (
        max(p.pts + p.duration for p in video),
        max(p.pts + p.duration for p in audio),
        len(video),
    )


def _decode_errors(path: Path) -> str:
    run = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return run.stderr.strip()


def _claimers(data_dir: Path, part_ids: list[str]) -> dict[str, set[str]]:
    """Log file → the parts its process claimed (``task_claimed``/``part_claimed``)."""
    found: dict[str, set[str]] = {}
    for log in data_dir.glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if "_claimed" in line:
                found.setdefault(log.name, set()).update(i for i in part_ids if i in line)
    return {name: ids for name, ids in found.items() if ids}


def test_a_split_transcode_matches_a_single_pass(tmp_path: Path, source: Path) -> None:
    data_dir = tmp_path / "data"
    with fleet(data_dir, source, workers=2) as kvs:
        with WorkerProcess(data_dir, SINGLE, "--concurrency", "1", name="single"):
            split_id = kvs.transcode("out/split.mp4")
            single_id = kvs.transcode("out/single.mp4", pipeline="ref")
            info, reference = kvs.wait(split_id), kvs.wait(single_id)
        assert info["TaskStatus"] == "succ", info
        assert reference["TaskStatus"] == "succ", reference
        # 120 s in chunks of about 20 s, each cut at a keyframe (every 2 s).
        parts = info["Parts"]
        assert [p["Index"] for p in parts] == list(range(6))
        assert all(p["Status"] == "succ" and p["Progress"] == 100 for p in parts), parts
        assert info["Progress"] == 100
        assert "Parts" not in reference
        command = info["Command"]
        assert "-read_intervals" in command and "-f concat" in command, command
        assert command.count("-an ") >= 6 and "part-0005/output.mp4" in command
        # Parts are rows of the queue, but no list shows them.
        listed = kvs.client.get_task_list(Limit=100)
        assert {t["TaskID"] for t in listed["TaskInfo"]} == {split_id, single_id}
        split = kvs.download("out/split.mp4", tmp_path / "split.mp4")
        single = kvs.download("out/single.mp4", tmp_path / "single.mp4")
        part_ids = [part_task_id(split_id, n) for n in range(6)]
        ran = _claimers(data_dir, part_ids)
        rows = kvs.rows(split_id)
    assert len(ran) >= 2, ran  # parts ran in more than one process
    assert set().union(*ran.values()) == set(part_ids)
    assert {r["task_type"] for r in rows} == {PART_TYPE} and len(rows) == 6
    # The chunks were removed from the bucket.
    assert not list((data_dir / "buckets" / BUCKET).glob(".openkvs-split/*/*"))

    video_end, audio_end, frames = _ends(split)
    ref_video_end, ref_audio_end, ref_frames = _ends(single)
    assert ref_frames == SECONDS * FPS
    assert abs(frames - ref_frames) <= 1
    assert abs(video_end - ref_video_end) <= 1 / FPS + 1e-6
    # Audio sync at the end: the audio ends where it ends in the single pass, relative to
    # the video, within 20 ms.
    assert abs((audio_end - video_end) - (ref_audio_end - ref_video_end)) <= 0.020
    assert _decode_errors(split) == ""
    assert psnr(split, source) >= psnr(single, source) - 0.5


def _held_by(rows: list[sqlite3.Row], pid: int) -> list[str]:
    """The running parts whose lease owner is process ``pid`` (``host:machine:pid:...``)."""
    return [
        r["task_id"]
        for r in rows
        if r["status"] == "exec" and (r["lease_owner"] or "").split(":")[2:3] == [str(pid)]
    ]


def test_a_part_whose_worker_is_killed_is_run_again_alone(tmp_path: Path, source: Path) -> None:
    data_dir = tmp_path / "data"
    with fleet(data_dir, source, workers=0) as kvs:
        # 100 s of the source: five parts. serve's one worker takes the task and runs its
        # parts one by one; a worker started once the parts are queued takes one too, and
        # is killed while it runs it.
        task_id = kvs.transcode("out/clip.mp4", ExtParam='{"duration": 100}')
        deadline = time.monotonic() + 60
        while len(kvs.rows(task_id)) < 5:
            assert time.monotonic() < deadline, kvs.wait(task_id, timeout=0)
            time.sleep(0.05)
        with WorkerProcess(data_dir, SPLIT, "--concurrency", "1", name="victim") as victim:
            while not (held := _held_by(kvs.rows(task_id), victim.pid)):
                assert time.monotonic() < deadline, kvs.rows(task_id)
                time.sleep(0.05)
            victim.kill9()
        info = kvs.wait(task_id)
        assert info["TaskStatus"] == "succ", info
        rows = {r["task_id"]: r for r in kvs.rows(task_id)}
        out = kvs.download("out/clip.mp4", tmp_path / "clip.mp4")
    assert len(rows) == 5 and all(r["status"] == "succ" for r in rows.values())
    [killed] = held
    assert rows[killed]["attempts"] == 2  # taken back from the dead worker, run again
    assert [r["attempts"] for k, r in rows.items() if k != killed] == [1] * 4  # not re-run
    assert _ends(out)[2] == 100 * FPS
    assert _decode_errors(out) == ""


# -- the parent's worker in this process: real store (SQLite, PostgreSQL), real ffmpeg ----


@dataclass
class Parent:
    """A split avtrans task claimed in a real store, and what runs it."""

    engine: Engine
    tasks: TaskStore
    storage: LocalStorage
    settings: Settings
    task: TaskRecord
    user_id: int

    def run(self, cancel: threading.Event | None = None) -> list[dict[str, Any]]:
        executor = split_executors(self.settings, self.storage, self.tasks, None)["avtrans"]
        with job_for(self.task, self.storage, self.settings.scratch_dir, cancel=cancel) as job:
            return executor.run(job)

    def parts(self) -> list[Any]:
        """The part rows, deleted ones too (which the store's reads hide)."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(tasks_table)
                    .where(tasks_table.c.parent_id == self.task.task_id)
                    .order_by(tasks_table.c.created_at, tasks_table.c.id)
                )
            )

    def chunks_left(self) -> list[Path]:
        return list((self.settings.buckets_dir / BUCKET).glob(".openkvs-split/*/*"))


@pytest.fixture(scope="module")
def short_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_source(tmp_path_factory.mktemp("split-short"), seconds=12, size="160x90")


def _parent(engine: Engine, tmp_path: Path, source: Path, **settings: Any) -> Parent:
    """12 s of source in parts of 3 s (a keyframe every 2 s): 4 parts."""
    config = load(
        {},
        data_dir=tmp_path,
        split_min_seconds=4.0,
        split_chunk_seconds=3.0,
        poll_seconds=0.05,
        ffmpeg_threads=1,
        **settings,
    )
    storage = LocalStorage(config.buckets_dir)
    storage.create_bucket(BUCKET)
    storage.put_file(BUCKET, "in/short.mp4", source, acl="private", content_type="video/mp4")
    tasks = TaskStore(engine)
    user_id = UserStore(engine, Sealer(bytes(32))).ensure_user("alice").id
    spec = parse(PRESET)
    request = {
        "sources": [{"bucket": BUCKET, "key": "in/short.mp4", "type": "video", "index": 0}],
        "DstBucket": BUCKET,
        "DstObjectKey": "out/short.mp4",
        "spec": dump(spec),
        "options": dump(AvtransOptions()),
    }
    now = time.time()
    new = NewTask(new_task_id(now), user_id, "CreateTask", "avtrans", "long", "usual", False)
    tasks.create(replace(new, request=request), now)
    task = tasks.claim("here:0:1:1:aaaaaa:worker-0", now, 30, None, frozenset({"avtrans"}))
    assert task is not None
    return Parent(engine, tasks, storage, config, task, user_id)


def test_the_parent_alone_runs_every_part(
    engine: Engine, tmp_path: Path, short_source: Path
) -> None:
    parent = _parent(engine, tmp_path, short_source)
    [item] = parent.run()
    parts = parent.parts()
    assert [p.status for p in parts] == ["succ"] * 4
    assert all(p.parent_id == parent.task.task_id and p.attempts == 1 for p in parts)
    assert item["dstpath"] == "out/short.mp4"
    assert parent.chunks_left() == []
    out = parent.settings.buckets_dir / BUCKET / "out" / "short.mp4"
    assert _ends(out)[2] == 12 * FPS
    # Run again (a worker that died after the parts were done): the parts are reused.
    parent.run()
    assert [p.attempts for p in parent.parts()] == [1, 1, 1, 1]


def test_a_failed_part_fails_the_task_with_its_code(
    engine: Engine, tmp_path: Path, short_source: Path
) -> None:
    # Every encode of a part goes over the memory limit (2002); the keyframe probe has none.
    parent = _parent(engine, tmp_path, short_source, ffmpeg_max_rss_mb=2)
    with pytest.raises(TaskError) as failed:
        parent.run()
    assert failed.value.code == 2002
    statuses = [(p.status, p.error_code) for p in parent.parts()]
    assert statuses[0] == ("fail", 2002)
    assert {s for s, _ in statuses[1:]} == {"del"}  # not run: cancelled
    assert parent.chunks_left() == []


def test_deleting_the_task_cancels_its_parts(
    engine: Engine, tmp_path: Path, short_source: Path
) -> None:
    parent = _parent(engine, tmp_path, short_source)
    cancel = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            parent.run(cancel)
        except BaseException as exc:
            failure.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 30
    while not any(p.status == "exec" for p in parent.parts()):
        assert time.monotonic() < deadline and runner.is_alive()
        time.sleep(0.01)
    # DelTaskByTaskID; the pool's next lease renewal then sets the job's cancel event.
    parent.tasks.delete(parent.task.task_id, parent.user_id, time.time())
    cancel.set()
    runner.join(30)
    assert isinstance(failure[0], TaskError) and failure[0].code == 2005
    statuses = [(p.status, p.error_code) for p in parent.parts()]
    # The running part is stopped (2005), unless it ended just before; the others never run.
    assert {s for s in statuses if s[0] != "del"} <= {("fail", 2005), ("succ", 0)}, statuses
    assert len([s for s in statuses if s[0] == "del"]) >= 2, statuses
    assert parent.chunks_left() == []
