"""What the service layer works with: the stores, the object storage, the settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from openkvs import kinds
from openkvs.config import Settings
from openkvs.service.concurrency import ConcurrencyLimit
from openkvs.storage.base import ObjectStorage
from openkvs.store.buckets import BucketStore
from openkvs.store.counters import CallCounter
from openkvs.store.outbox import OutboxStore
from openkvs.store.pipelines import PipelineStore
from openkvs.store.presets import PresetStore
from openkvs.store.runs import RunStore
from openkvs.store.secrets import Sealer
from openkvs.store.tasks import TaskStore
from openkvs.store.users import UserStore


def _nothing() -> None:
    return None


def _ignore(_task_id: str) -> None:
    return None


@dataclass(frozen=True)
class Services:
    settings: Settings
    users: UserStore
    tasks: TaskStore
    outbox: OutboxStore
    storage: ObjectStorage
    presets: PresetStore
    pipelines: PipelineStore
    counter: CallCounter
    sealer: Sealer
    #: Bucket owners and grants: who may read sources from and write outputs to a bucket.
    buckets: BucketStore
    #: What running tasks did: phase, command, failure log (GetTaskByTaskID shows them).
    runs: RunStore
    #: Preset types that have an executor: tasks of other types are refused at creation.
    executable_types: frozenset[str] = field(
        default_factory=lambda: frozenset(kind.name for kind in kinds.with_executors())
    )
    #: Called after a task is queued (or a pipeline opened), so workers start at once.
    task_queued: Callable[[], None] = field(default=_nothing)
    #: Called after DelTaskByTaskID asked a running task to stop: a worker of this process
    #: stops it at once (workers elsewhere learn it at their next lease renewal).
    task_cancelled: Callable[[str], None] = field(default=_ignore)
    clock: Callable[[], float] = field(default=time.time)
    #: The database (``/readyz`` pings it, ``/metrics`` reads the queues from it).
    database: Engine | None = None
    #: FetchMetaInfo probes running at once, in all and per user (from ``settings`` when
    #: not given; ``dataclasses.replace`` keeps the same one).
    fetch_slots: ConcurrencyLimit | None = None

    def __post_init__(self) -> None:
        if self.fetch_slots is None:
            limit = ConcurrencyLimit(
                self.settings.fetch_meta_limit,
                self.settings.fetch_meta_user_limit,
                "FetchMetaInfo calls",
            )
            object.__setattr__(self, "fetch_slots", limit)
