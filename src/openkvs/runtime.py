"""Assembling a process from settings: stores, storage, workers, notifier, API."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from openkvs.config import Settings
from openkvs.notify.notifier import Notifier
from openkvs.notify.retry import RetryPolicy
from openkvs.notify.sender import HttpSender
from openkvs.service.context import Services
from openkvs.storage.local import LocalStorage
from openkvs.store.counters import CallCounter
from openkvs.store.database import open_engine
from openkvs.store.outbox import OutboxStore
from openkvs.store.pipelines import PipelineStore
from openkvs.store.presets import PresetStore
from openkvs.store.secrets import Sealer, load_key
from openkvs.store.tasks import TaskStore
from openkvs.store.users import UserStore
from openkvs.worker.pool import PoolSettings, WorkerPool


def open_services(settings: Settings) -> tuple[Services, Engine]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sealer = Sealer(load_key(settings.master_key, settings.data_key_file))
    engine = open_engine(settings.sqlalchemy_url)
    services = Services(
        settings=settings,
        users=UserStore(engine),
        tasks=TaskStore(engine),
        outbox=OutboxStore(engine),
        storage=LocalStorage(settings.buckets_dir),
        presets=PresetStore(engine),
        pipelines=PipelineStore(engine),
        counter=CallCounter(engine),
        sealer=sealer,
    )
    return services, engine


@dataclass
class Runtime:
    """A running set of background parts: the worker pool and the notifier."""

    services: Services
    engine: Engine
    pool: WorkerPool | None
    notifier: Notifier

    def start(self) -> None:
        self.notifier.start()
        if self.pool is not None:
            self.pool.start()

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()
        self.notifier.stop()
        self.engine.dispose()


def build_runtime(settings: Settings, *, with_workers: bool = True) -> Runtime:
    services, engine = open_services(settings)
    notifier = Notifier(
        services.outbox,
        HttpSender(settings.callback_timeout),
        RetryPolicy(settings.callback_backoff),
        timeout=settings.callback_timeout,
        poll_seconds=settings.poll_seconds,
    )
    pool = None
    if with_workers:
        # The engine (NumPy, ffmpeg) is loaded only by processes that run tasks.
        from openkvs.service.pipelines import blocked
        from openkvs.worker.avinfo import AvinfoExecutor
        from openkvs.worker.executor import Executor
        from openkvs.worker.wave import WaveExecutor

        parallel = settings.wave_parallel or settings.workers_cores()
        executors: dict[str, Executor] = {
            "audiowave": WaveExecutor(services.storage, parallel, settings.task_timeout),
            "avinfo": AvinfoExecutor(services.storage),
        }
        pool = WorkerPool(
            services.tasks,
            executors,
            PoolSettings(
                workers=settings.workers,
                lease_seconds=settings.lease_seconds,
                max_attempts=settings.max_attempts,
                poll_seconds=settings.poll_seconds,
            ),
            on_finished=notifier.wake,
            blocked=lambda stored, running: blocked(
                stored, running, time.time(), settings.pipeline_quota
            ),
        )
        services = replace(
            services,
            task_queued=pool.wake,
            task_cancelled=pool.cancel,
            executable_types=frozenset(executors),
        )
    return Runtime(services=services, engine=engine, pool=pool, notifier=notifier)
