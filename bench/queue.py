"""Queue benchmark: claims per second with 1, 4 and 16 claimer processes, on PostgreSQL and
on SQLite, through the store directly (no HTTP, no media work).

    .venv/bin/python bench/queue.py [--tasks 2000] [--claimers 1,4,16]
                                    [--databases postgresql,sqlite] [--modes claim,cycle]
                                    [--pg-url URL] [--legacy] [--pgbench SECONDS]
                                    [--json F]

1. For each database, mode and number of claimers, a fresh database (PostgreSQL: a new
   database created through ``--pg-url``, default ``$OPENKVS_TEST_PG_URL`` or the local
   server as user postgres; SQLite: a file in a temporary folder, WAL as ``serve`` runs
   it) migrated to the current schema, holding ``--tasks`` queued avinfo tasks.
2. The claimers are processes (``multiprocessing``, spawned), each with its own engine, as
   ``openkvs worker`` processes on several machines would be, claiming as a worker pool
   does (the pipeline rules on, the task kinds it runs). They start together (a barrier)
   and loop until the queue is empty, in one of two modes:

   - ``claim``: **claims only** (tasks stay running). The tasks are spread over 100 users
     × 2 pipelines, 10 each: exactly the default Quota, so every task can start;
   - ``cycle``: **claim a task, then finish it** (succ, no callback): both transactions of
     a task's life in the queue. The tasks are spread over 4 users × 2 pipelines with the
     default Quota (10): at most 80 run at once.

   A claim that finds nothing while tasks remain (the free slots of its candidate taken by
   other claimers at that instant) is counted as empty and retried.
3. Prints claims/s (tasks claimed, and in ``cycle`` finished, per second, from the barrier
   to the last claimer's end), empty claims, the CPU time per task of the claimers and of
   their PostgreSQL server processes together (``/proc``: the server must run on this
   machine to be counted; SQLite works inside the claimers), the "ceiling": the tasks per
   second that many idle cores would give at that CPU per task (other work on the machine
   distorts it less than claims/s), and checks that every task was claimed exactly once.
   ``--legacy`` also runs the claim openkvs had before the queue module (a global advisory
   lock on PostgreSQL, every pipeline read and every running task counted at each claim)
   and prints the ratio.
4. ``--pgbench SECONDS`` also runs PostgreSQL's claim statement alone through ``pgbench``
   (a C client: next to no client CPU) with the same numbers of sessions, each claiming
   for that long from 20,000 queued tasks: what the database side sustains, as when the
   claimers run on other machines.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is called queue.py: its folder must not shadow the standard library's ``queue``
# (which multiprocessing imports) when it is run as a script.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
REPO = _HERE.parent
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from sqlalchemy import Engine, create_engine, func, select, text, tuple_, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from openkvs.model import TaskStatus  # noqa: E402
from openkvs.service.ids import new_task_id  # noqa: E402
from openkvs.store.database import open_engine  # noqa: E402
from openkvs.store.queue import PipelineRules  # noqa: E402
from openkvs.store.schema import tasks  # noqa: E402
from openkvs.store.secrets import Sealer  # noqa: E402
from openkvs.store.tasks import TaskStore  # noqa: E402
from openkvs.store.users import UserStore  # noqa: E402

DEFAULT_PG = os.environ.get(
    "OPENKVS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PIPELINES = ("usual", "batch")
CYCLE_USERS = 4
QUOTA = 10
TYPES = frozenset({"avinfo", "audiowave", "avtrans"})
LEASE = 600.0


@dataclass(frozen=True)
class Result:
    database: str
    mode: str  # "claim" or "cycle"
    claim: str  # "queue" or "legacy"
    claimers: int
    tasks: int
    seconds: float
    empty: int
    client_cpu: float  # seconds, all claimers
    server_cpu: float  # seconds, their PostgreSQL server processes (on this machine)

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds

    @property
    def cpu_ms(self) -> float:
        """CPU per task, claimers and their database server processes together."""
        return (self.client_cpu + self.server_cpu) / self.tasks * 1000

    def ceiling(self, cores: int) -> float:
        """Tasks per second ``cores`` idle cores would give at this CPU per task."""
        return cores * 1000 / self.cpu_ms if self.cpu_ms else 0.0


# -- databases ------------------------------------------------------------------------


class Database:
    """A fresh database of one kind, dropped afterwards."""

    def __init__(self, kind: str, pg_url: str) -> None:
        self.kind = kind
        self._pg_url = pg_url
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._name = ""
        self.url = ""

    def __enter__(self) -> Database:
        if self.kind == "sqlite":
            self._tmp = tempfile.TemporaryDirectory(prefix="openkvs-bench-queue-")
            self.url = f"sqlite:///{self._tmp.name}/openkvs.db"
        else:
            self._name = f"openkvs_bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(self._pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self._name}"'))
            admin.dispose()
            self.url = self._pg_url.rsplit("/", 1)[0] + "/" + self._name
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
        if self._name:
            admin = create_engine(self._pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)'))
            admin.dispose()


def fill(url: str, count: int, mode: str) -> None:
    """``count`` queued tasks over users × PIPELINES (see the module docstring)."""
    engine = open_engine(url)
    users = UserStore(engine, Sealer(bytes(32)))
    pairs = count // QUOTA if mode == "claim" else CYCLE_USERS * len(PIPELINES)
    ids = [users.ensure_user(f"bench{n}").id for n in range(max(1, pairs // len(PIPELINES)))]
    now = time.time()
    rows = []
    for n in range(count):
        rows.append(
            {
                "task_id": new_task_id(now),
                "user_id": ids[n % len(ids)],
                "action": "CreateTask",
                "task_type": "avinfo",
                "preset": "bench",
                "pipeline": PIPELINES[(n // len(ids)) % len(PIPELINES)],
                "is_top": 0,
                "top_at": None,
                "status": TaskStatus.INIT.value,
                "request": "{}",
                "error_code": 0,
                "error_msg": "",
                "progress": 0,
                "attempts": 0,
                "cancel_requested": 0,
                "created_at": now + n * 1e-6,
                "updated_at": now,
                "parent_id": None,
            }
        )
    with engine.begin() as conn:
        conn.execute(tasks.insert(), rows)
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
    engine.dispose()


def check(url: str, count: int, mode: str) -> None:
    engine = open_engine(url, migrate_schema=False)
    status = TaskStatus.EXEC if mode == "claim" else TaskStatus.SUCC
    with engine.connect() as conn:
        done = conn.execute(select(func.count()).where(tasks.c.status == status.value)).scalar()
        once = conn.execute(select(func.max(tasks.c.attempts))).scalar()
    engine.dispose()
    if done != count or once != 1:
        raise SystemExit(f"FAILED: {done} of {count} tasks {status}, most claims of one: {once}")


# -- the claim before the queue module, for comparison --------------------------------


def _legacy_claim(engine: Engine, owner: str, now: float) -> tuple[str, int, str] | None:
    """openkvs's claim before ``store/queue.py``: one advisory lock for the whole queue on
    PostgreSQL (``BEGIN IMMEDIATE`` on SQLite), every pipeline read and every running task
    counted at each claim, the blocked pairs excluded."""
    from openkvs.service.pipelines import window_open
    from openkvs.store.pipelines import _pipeline
    from openkvs.store.schema import pipelines

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7350913)"))
        stored = [(r.user_id, _pipeline(r)) for r in conn.execute(select(pipelines))]
        running = {
            (r[0], r[1]): int(r[2])
            for r in conn.execute(
                select(tasks.c.user_id, tasks.c.pipeline, func.count())
                .where(tasks.c.status == "exec")
                .group_by(tasks.c.user_id, tasks.c.pipeline)
            )
        }
        settings = {(uid, pl.name): pl for uid, pl in stored}
        closed = {
            key
            for key, pl in settings.items()
            if pl.state.value != "Active"
            or not window_open(pl.regular_start, pl.regular_duration, now)
        }
        closed |= {
            key
            for key, n in running.items()
            if n >= (settings[key].quota if key in settings else QUOTA)
        }
        candidate = (
            select(tasks.c.id)
            .where(tasks.c.status == "init", tasks.c.task_type.in_(sorted(TYPES)))
            .order_by(tasks.c.is_top.desc(), tasks.c.top_at, tasks.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if closed:
            candidate = candidate.where(
                tuple_(tasks.c.user_id, tasks.c.pipeline).not_in(sorted(closed))
            )
        pk = conn.execute(candidate).scalar()
        if pk is None:
            return None
        row = conn.execute(
            update(tasks)
            .where(tasks.c.id == pk, tasks.c.status == "init")
            .values(
                status="exec",
                lease_owner=owner,
                lease_expires_at=now + LEASE,
                attempts=tasks.c.attempts + 1,
                started_at=func.coalesce(tasks.c.started_at, now),
                updated_at=now,
            )
            .returning(tasks.c.task_id, tasks.c.user_id, tasks.c.pipeline)
        ).first()
    return None if row is None else (row.task_id, row.user_id, row.pipeline)


def _legacy_finish(engine: Engine, task_id: str, owner: str, now: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(tasks)
            .where(tasks.c.task_id == task_id, tasks.c.lease_owner == owner)
            .values(
                status="succ",
                progress=100,
                lease_owner=None,
                lease_expires_at=None,
                finished_at=now,
                updated_at=now,
                result="[]",
            )
        )


# -- claimers -------------------------------------------------------------------------


def _cpu_of(pid: int | None) -> float:
    """CPU seconds (user + system) of a process of this machine, 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def claimer(url: str, mode: str, legacy: bool, barrier: Any, results: Any) -> None:
    engine = open_engine(url, migrate_schema=False)
    store = TaskStore(engine)
    rules = PipelineRules(default_quota=QUOTA)
    owner = f"bench-{os.getpid()}"
    backend = None  # the PostgreSQL server process of this claimer's one connection
    with engine.connect() as conn:  # the connection is open before the clock starts
        if engine.dialect.name == "postgresql":
            backend = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    barrier.wait()
    cpu = time.process_time()
    server_cpu = _cpu_of(backend)
    done = empty = 0
    while True:
        now = time.time()
        if legacy:
            got = _legacy_claim(engine, owner, now)
            task_id = None if got is None else got[0]
        else:
            task = store.claim(owner, now, LEASE, rules, TYPES)
            task_id = None if task is None else task.task_id
        if task_id is None:
            if store.queued_count() == 0:
                break
            empty += 1
            continue
        done += 1
        if mode == "claim":
            continue
        if legacy:
            _legacy_finish(engine, task_id, owner, time.time())
        else:
            store.finish(
                task_id,
                owner,
                status=TaskStatus.SUCC,
                error_code=0,
                error_msg="",
                result=[],
                callback=None,
                now=time.time(),
            )
    ended = time.time()
    cpu = time.process_time() - cpu
    results.put((done, empty, ended, cpu, _cpu_of(backend) - server_cpu))
    engine.dispose()


def run(kind: str, mode: str, claimers: int, count: int, legacy: bool, pg_url: str) -> Result:
    ctx = multiprocessing.get_context("spawn")
    with Database(kind, pg_url) as db:
        fill(db.url, count, mode)
        barrier = ctx.Barrier(claimers + 1)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=claimer, args=(db.url, mode, legacy, barrier, results))
            for _ in range(claimers)
        ]
        for proc in procs:
            proc.start()
        barrier.wait()
        started = time.time()
        reports = [results.get(timeout=600) for _ in procs]
        for proc in procs:
            proc.join(60)
        check(db.url, count, mode)
    done = sum(r[0] for r in reports)
    if done != count:
        raise SystemExit(f"FAILED: claimers report {done} tasks of {count}")
    return Result(
        database=kind,
        mode=mode,
        claim="legacy" if legacy else "queue",
        claimers=claimers,
        tasks=done,
        seconds=max(r[2] for r in reports) - started,
        empty=sum(r[1] for r in reports),
        client_cpu=sum(r[3] for r in reports),
        server_cpu=sum(r[4] for r in reports),
    )


# -- the claim statement alone, from a C client (pgbench) ------------------------------


def pgbench(clients: list[int], pg_url: str, seconds: int) -> None:
    """Claims/s of PostgreSQL's claim statement run by ``pgbench`` (a C client: next to no
    client CPU): what the database side sustains, as when claimers run on other machines.
    20,000 queued tasks in ``claim`` mode; each session claims for ``seconds``."""
    import shutil
    import subprocess

    from openkvs.store import queue

    if shutil.which("pgbench") is None:
        print("pgbench: not installed, skipped")
        return
    now = time.time()
    # The statement the claim runs (store/queue.py), its parameters written in as literals.
    sql = queue._claim_sql(True, False, False, True).text
    values = {
        "owner": "'pgbench'",
        "expires": repr(now + LEASE),
        "now": repr(now),
        "clock": str(queue.day_seconds(now)),
        "default_quota": str(QUOTA),
        "task_types": "ARRAY[" + ",".join(f"'{t}'" for t in sorted(TYPES)) + "]::text[]",
    }
    for name, value in values.items():
        sql = sql.replace(f":{name}", value)
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(sql + ";\n")
        script.flush()
        for n in clients:
            with Database("postgresql", pg_url) as db:
                fill(db.url, 20000, "claim")
                engine = open_engine(db.url, migrate_schema=False)
                TaskStore(engine).claim("setup", now, LEASE, PipelineRules(QUOTA), TYPES)
                engine.dispose()
                url = make_url(db.url)
                command = ["pgbench", "-n", "-M", "prepared", "-f", script.name]
                command += ["-c", str(n), "-j", str(min(n, os.cpu_count() or 1))]
                command += ["-T", str(seconds), "-h", url.host or "127.0.0.1"]
                command += ["-p", str(url.port or 5432), "-U", url.username or "postgres"]
                env = {**os.environ, "PGPASSWORD": url.password or ""}
                out = subprocess.run(
                    [*command, url.database or ""], capture_output=True, text=True, env=env
                )
                tps = [line for line in out.stdout.splitlines() if line.startswith("tps")]
                print(f"pgbench     claim  sql     {n:>8} {tps[0].split()[2] if tps else '?':>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--claimers", default="1,4,16")
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument("--modes", default="claim,cycle")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--legacy", action="store_true", help="also run the old claim")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--pgbench",
        type=int,
        metavar="SECONDS",
        default=0,
        help="also run the claim statement alone through pgbench for that long per count",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.claimers.split(",")]
    results: list[Result] = []
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    print(f"{cores} cores, load average {load:.1f}; {args.tasks} tasks", flush=True)
    header = (
        f"{'database':<11} {'mode':<6} {'claim':<7} {'claimers':>8} {'claims/s':>9}"
        f" {'empty':>6} {'cpu ms':>7} {'ceiling':>8}"
    )
    print(header + ("  new/legacy" if args.legacy else ""))
    for kind in args.databases.split(","):
        for mode in args.modes.split(","):
            for n in counts:
                mine = run(kind, mode, n, args.tasks, False, args.pg_url)
                runs = [mine]
                if args.legacy:
                    runs.append(run(kind, mode, n, args.tasks, True, args.pg_url))
                for r in runs:
                    results.append(r)
                    line = (
                        f"{r.database:<11} {r.mode:<6} {r.claim:<7} {r.claimers:>8}"
                        f" {r.rate:>9.0f} {r.empty:>6} {r.cpu_ms:>7.2f} {r.ceiling(cores):>8.0f}"
                    )
                    if r is not mine:
                        line += f"  {mine.rate / r.rate:.2f}x"
                    print(line, flush=True)
    if args.pgbench:
        pgbench(counts, args.pg_url, args.pgbench)
    if args.json:
        args.json.write_text(
            json.dumps(
                [{**r.__dict__, "rate": r.rate, "cpu_ms": r.cpu_ms} for r in results], indent=2
            )
        )


if __name__ == "__main__":
    main()
