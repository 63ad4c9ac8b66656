"""What the service layer works with: the stores, the object storage, the settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from openkvs.config import Settings
from openkvs.storage.base import ObjectStorage
from openkvs.store.outbox import OutboxStore
from openkvs.store.tasks import TaskStore
from openkvs.store.users import UserStore


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Services:
    settings: Settings
    users: UserStore
    tasks: TaskStore
    outbox: OutboxStore
    storage: ObjectStorage
    #: Called after a task is queued, so that workers in this process start at once.
    task_queued: Callable[[], None] = field(default=_nothing)
    clock: Callable[[], float] = field(default=time.time)
