"""``openkvs worker`` (a worker process of a fleet) and ``openkvs workers`` (the list of
them, from the worker registry)."""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import click

from openkvs import config as config_mod
from openkvs import logs, metrics
from openkvs.config import ConfigError, Settings
from openkvs.runtime import build_runtime
from openkvs.store.database import open_engine
from openkvs.store.workers import WorkerRecord, WorkerRegistry, lost_after

_COLUMNS = (
    "ID", "HOST", "STATE", "PIPELINES", "CONCURRENCY", "RUNNING", "VERSION", "STARTED",
    "HEARTBEAT",
)  # fmt: skip


def _settings() -> Settings:
    try:
        return config_mod.load()
    except ConfigError as exc:
        raise click.ClickException(f"bad configuration: {exc}") from exc


def _pipelines_option(_ctx: click.Context, _param: click.Parameter, raw: str | None) -> Any:
    try:
        return None if raw is None else config_mod.parse("worker_pipelines", raw)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("worker")
@click.option(
    "--pipelines",
    callback=_pipelines_option,
    help="take only tasks of these pipelines, of every user (comma-separated names; "
    "default: OPENKVS_WORKER_PIPELINES, else all)",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="tasks run at once (default: OPENKVS_WORKERS)",
)
def worker(pipelines: tuple[str, ...] | None, concurrency: int | None) -> None:
    """Run only a worker pool and notifier (scale-out: share the database and storage).

    It registers itself (`openkvs workers` lists it). SIGTERM or SIGINT drains it: it
    claims no new task, gives running tasks OPENKVS_DRAIN_SECONDS to finish, puts the
    others back in the queue, unregisters and exits."""
    settings = _settings()
    if concurrency is not None:
        settings = replace(settings, workers=concurrency)
    if pipelines is not None:
        settings = replace(settings, worker_pipelines=pipelines)
    logs.setup(
        as_json=settings.log_json, folder=settings.logs_dir, keep_days=settings.log_keep_days
    )
    metrics.enable()
    server = None
    if settings.metrics_port:
        server = metrics.serve(settings.metrics_port, settings.metrics_token)
    runtime = build_runtime(settings)
    stop = threading.Event()

    def on_signal(*_: Any) -> None:
        runtime.drain()  # returns at once; the pool claims nothing more
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    runtime.start()
    worker_id = runtime.pool.worker_id if runtime.pool else ""
    served = ",".join(settings.worker_pipelines) or "all"
    click.echo(
        f"openkvs worker {worker_id} running {settings.workers} workers (pipelines: {served})",
        err=True,
    )
    while not stop.wait(1.0):
        pass
    click.echo("openkvs worker draining", err=True)
    runtime.stop()
    if server is not None:
        server.shutdown()
    metrics.disable()
    click.echo("openkvs worker stopped", err=True)


@click.command("workers")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array, one object each")
def workers(as_json: bool) -> None:
    """List the worker processes (`openkvs worker`, the pool of `openkvs serve`) of the
    database: one row each, with its state: `alive`, `draining` (stopping after SIGTERM:
    it takes no new task) or `lost` (no heartbeat for 3 × OPENKVS_HEARTBEAT_SECONDS, and
    at least OPENKVS_LEASE_SECONDS: it died or cannot reach the database; its tasks are
    taken back when their leases run out). Give it the deployment's settings."""
    settings = _settings()
    engine = open_engine(settings.sqlalchemy_url)
    try:
        now = time.time()
        found = WorkerRegistry(engine).list_workers(
            now, lost_after(settings.heartbeat_seconds, settings.lease_seconds)
        )
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([worker.as_json(now) for worker in found], indent=2))
        return
    rows = [_COLUMNS, *(_row(worker, now) for worker in found)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]))


def _row(worker: WorkerRecord, now: float) -> tuple[str, ...]:
    return (
        worker.id,
        worker.host,
        worker.state.value,
        ",".join(worker.pipelines) or "*",
        str(worker.concurrency),
        str(len(worker.running)),
        worker.version,
        datetime.fromtimestamp(worker.started_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        f"{_age(now - worker.heartbeat_at)} ago",
    )


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"
