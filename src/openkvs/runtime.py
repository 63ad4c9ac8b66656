"""Assembling a process from settings: stores, storage, workers, notifier, API."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from openkvs import kinds
from openkvs.config import Settings
from openkvs.errors import ApiError
from openkvs.notify.notifier import Notifier
from openkvs.notify.policy import AddressPolicy
from openkvs.notify.retry import RetryPolicy
from openkvs.notify.sender import HttpSender
from openkvs.service.context import Services
from openkvs.storage.factory import open_storage
from openkvs.storage.keys import validate_bucket
from openkvs.store.buckets import DEFAULT_USER, BucketStore
from openkvs.store.counters import CallCounter
from openkvs.store.database import open_engine
from openkvs.store.outbox import OutboxStore
from openkvs.store.permissions import private_dir
from openkvs.store.pipelines import PipelineStore
from openkvs.store.presets import PresetStore
from openkvs.store.queue import PipelineRules
from openkvs.store.runs import RunStore
from openkvs.store.secrets import Sealer, SecretsError, load_key
from openkvs.store.tasks import TaskStore
from openkvs.store.users import UserStore, sealed_secrets_exist
from openkvs.store.wakeups import TaskWakeups
from openkvs.store.workers import WorkerRegistry
from openkvs.worker.pool import PoolSettings, WorkerPool
from openkvs.worker.progress_callbacks import ProgressCallbacks

log = logging.getLogger(__name__)


def open_services(settings: Settings) -> tuple[Services, Engine]:
    """The stores and storage of ``settings``, with the data folder (owner-only), the
    database and the data key checked. Raises ``SecretsError`` when the data key is
    missing, malformed or not the one the database's secrets were sealed with."""
    private_dir(settings.data_dir)
    engine = open_engine(settings.sqlalchemy_url)
    try:
        sealer, users = _open_secrets(settings, engine)
    except BaseException:
        engine.dispose()
        raise
    services = Services(
        settings=settings,
        users=users,
        tasks=TaskStore(engine),
        outbox=OutboxStore(engine),
        storage=open_storage(settings),
        presets=PresetStore(engine),
        pipelines=PipelineStore(engine),
        counter=CallCounter(engine),
        sealer=sealer,
        buckets=BucketStore(engine),
        runs=RunStore(engine),
        database=engine,
    )
    _adopt_buckets(services)
    return services, engine


def _adopt_buckets(services: Services) -> None:
    """Buckets without an owner (folders made before owners existed, or by hand) become
    the default user's. Idempotent; several processes starting at once agree on it.
    Folders whose names cannot be buckets are left alone (no request can name them)."""
    unowned = services.buckets.unowned(
        name for name in services.storage.list_buckets() if _is_bucket_name(name)
    )
    if unowned:
        owner = services.users.ensure_user(DEFAULT_USER)
        for name in services.buckets.adopt(unowned, owner.id):
            log.info("bucket_adopted", extra={"bucket": name, "owner": owner.name})


def _is_bucket_name(name: str) -> bool:
    try:
        validate_bucket(name)
    except ApiError:
        return False
    return True


def _open_secrets(settings: Settings, engine: Engine) -> tuple[Sealer, UserStore]:
    """The data key, checked against the secrets already sealed; plain secrets left by an
    older version are sealed now (before that, with a wrong key, nothing is written)."""
    where = "OPENKVS_MASTER_KEY" if settings.master_key else str(settings.data_key_file)
    sealed = sealed_secrets_exist(engine)
    try:
        # A new key file is created only for a database without sealed secrets: a lost
        # key must be restored, not silently replaced by one that opens nothing.
        key = load_key(settings.master_key, settings.data_key_file, create=not sealed)
    except SecretsError as exc:
        if sealed and not settings.master_key and not settings.data_key_file.exists():
            raise SecretsError(
                f"the database holds secrets sealed with a data key, but the key file "
                f"{settings.data_key_file} does not exist: restore it (or set "
                f"OPENKVS_MASTER_KEY / OPENKVS_KEY_FILE)"
            ) from exc
        raise
    sealer = Sealer(key)
    users = UserStore(engine, sealer)
    try:
        users.check_data_key()
    except SecretsError as exc:
        raise SecretsError(
            f"the data key from {where} does not open the secrets in the database "
            f"(is it the key this database was created with?): {exc}"
        ) from exc
    resealed = users.seal_legacy()
    if resealed:
        log.info("secrets_sealed", extra={"count": resealed})
    return sealer, users


@dataclass
class Runtime:
    """A running set of background parts: the worker pool and the notifier."""

    services: Services
    engine: Engine
    pool: WorkerPool | None
    notifier: Notifier
    progress: ProgressCallbacks | None = None  # the pool's progress callbacks
    wakeups: TaskWakeups | None = None  # PostgreSQL NOTIFY → the pool's wake()

    def start(self) -> None:
        self.notifier.start()
        if self.pool is not None:
            self.pool.start()
        if self.wakeups is not None:
            self.wakeups.start()

    def drain(self) -> None:
        """Stop claiming tasks at once (SIGTERM); :meth:`stop` then waits for them.
        Returns at once: safe in a signal handler."""
        if self.pool is not None:
            self.pool.drain()

    def stop(self) -> None:
        if self.wakeups is not None:
            self.wakeups.stop()
        if self.pool is not None:
            self.pool.stop()
        if self.progress is not None:
            self.progress.close()
        self.notifier.stop()
        self.services.counter.close()
        self.engine.dispose()


def build_runtime(settings: Settings, *, with_workers: bool = True) -> Runtime:
    """The stores, a callback notifier and (``with_workers``) a worker pool registered in
    the worker registry. Without workers (``serve --no-workers``) the process still
    delivers callbacks: every process's notifier takes due callbacks from the shared
    outbox under a lease, so each attempt is made by one of them."""
    services, engine = open_services(settings)
    notifier = Notifier(
        services.outbox,
        HttpSender(
            AddressPolicy(settings.callback_allow),
            timeout=settings.callback_timeout,
            max_connections=settings.callback_concurrency,
        ),
        RetryPolicy(settings.callback_backoff),
        timeout=settings.callback_timeout,
        secrets=services.users.webhook_secret,
        per_host=settings.callback_per_host,
        in_flight=settings.callback_concurrency,
        poll_seconds=settings.poll_seconds,
    )
    pool = None
    progress = None
    wakeups = None
    if with_workers:
        # The engine (NumPy, ffmpeg) is loaded only by processes that run tasks.
        from openkvs.engine.sandbox import sweep_stale_folders
        from openkvs.worker.executor import Executor
        from openkvs.worker.job import JobMaker, sweep_scratch

        sweep_stale_folders()  # left behind by a predecessor killed with kill -9
        sweep_scratch(settings.scratch_dir)
        policy = AddressPolicy(settings.callback_allow)
        progress = ProgressCallbacks(
            HttpSender(
                policy,
                timeout=settings.callback_timeout,
                max_connections=settings.callback_concurrency,
            ),
            policy=policy,
            timeout=settings.callback_timeout,
            secrets=services.users.webhook_secret,
        )
        executors: dict[str, Executor] = {
            kind.name: kind.executor_class()(settings, services.storage)
            for kind in kinds.with_executors()
        }
        # avtrans splits long outputs into parts that any worker runs (worker/split.py).
        from openkvs.worker.split import split_executors

        executors.update(split_executors(settings, services.storage, services.tasks, services.runs))
        pool = WorkerPool(
            services.tasks,
            executors,
            PoolSettings(
                workers=settings.workers,
                lease_seconds=settings.lease_seconds,
                max_attempts=settings.max_attempts,
                poll_seconds=settings.poll_seconds,
                grace_seconds=settings.drain_seconds,
                pipelines=frozenset(settings.worker_pipelines) or None,
                heartbeat_seconds=settings.heartbeat_seconds,
            ),
            on_finished=notifier.wake,
            jobs=JobMaker(services.storage, settings.scratch_dir, settings.task_timeout),
            runs=services.runs,
            sinks=progress.sink,
            registry=WorkerRegistry(engine),
            blocked=PipelineRules(default_quota=settings.pipeline_quota),
        )
        wakeups = TaskWakeups(engine.url, pool.wake)
        services = replace(
            services,
            task_queued=pool.wake,
            task_cancelled=pool.cancel,
            executable_types=frozenset(executors),
        )
    return Runtime(
        services=services,
        engine=engine,
        pool=pool,
        notifier=notifier,
        progress=progress,
        wakeups=wakeups,
    )
