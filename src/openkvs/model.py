"""Domain objects: frozen dataclasses and state enums. Only ``store`` persists them."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any


class TaskStatus(enum.StrEnum):
    """Where a task is in its life (spec §4.1). The values are what the store keeps."""

    INIT = "init"  # queued in its pipeline, not started
    EXEC = "exec"  # claimed by a worker, which holds a lease on it
    SUCC = "succ"  # finished successfully
    FAIL = "fail"  # finished with an error code from spec §6.2
    DELETED = "del"  # removed by DelTaskByTaskID while queued; hidden everywhere

    @property
    def callback_number(self) -> int:
        """The ``Status`` number of callbacks (spec §4.1)."""
        return {"exec": 2, "succ": 3, "fail": 4}.get(self.value, 0)


class DeliveryState(enum.StrEnum):
    """A callback in the outbox."""

    PENDING = "pending"  # waiting for its next attempt (or being attempted, under a lease)
    DELIVERED = "delivered"  # a 2xx answer was received
    FAILED = "failed"  # every attempt failed; logged with code 2034


@dataclass(frozen=True)
class User:
    id: int
    name: str


@dataclass(frozen=True)
class CallbackStyle:
    """A user's legacy completion-callback variants (both off by default).

    ``lowercase``: first-level keys ``taskid``, ``status``, ``type``, ``details`` (§5.7).
    ``ks3_items``: a top-level ``itmes`` array for KS3-era customers (§5.5).
    Stored in the task's request at creation (``as_request``/``from_request``)."""

    lowercase: bool = False
    ks3_items: bool = False

    def as_request(self) -> dict[str, bool]:
        return {"lowercase": self.lowercase, "ks3_items": self.ks3_items}

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> CallbackStyle:
        raw = request.get("callback_style")
        if not isinstance(raw, dict):
            return cls()
        return cls(lowercase=bool(raw.get("lowercase")), ks3_items=bool(raw.get("ks3_items")))


@dataclass(frozen=True)
class AccessKey:
    """An access key as ``openkvs keys list`` shows it (its secret is never shown again)."""

    access_key_id: str
    user: str
    created_at: float
    revoked_at: float | None = None  # set by ``openkvs keys revoke``; refused from then on


@dataclass(frozen=True)
class TaskRecord:
    """One task as stored. ``request`` is the validated request (see ``service``)."""

    task_id: str
    user_id: int
    action: str
    task_type: str
    preset: str
    pipeline: str
    is_top: bool
    status: TaskStatus
    request: dict[str, Any]
    error_code: int = 0
    error_msg: str = ""
    result: list[dict[str, Any]] | None = None
    progress: int = 0
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    lease_owner: str | None = None
    cancel_requested: bool = False
    parent_id: str | None = None  # the task this one is a part of (a chunk), else None


@dataclass(frozen=True)
class Callback:
    """One callback in the outbox."""

    id: int
    task_id: str
    url: str
    body: str
    state: DeliveryState
    attempts: int
    next_attempt_at: float
    #: The user of the callback's task, whose secret signs it (set by ``take_due``).
    user_id: int | None = None


@dataclass(frozen=True)
class NewTask:
    """What the service hands the store to create a task."""

    task_id: str
    user_id: int
    action: str
    task_type: str
    preset: str
    pipeline: str
    is_top: bool
    request: dict[str, Any] = field(default_factory=dict)
    parent_id: str | None = None  # set for the parts of a split task

    def request_json(self) -> str:
        return json.dumps(self.request, ensure_ascii=False, separators=(",", ":"))


class PipelineState(enum.StrEnum):
    """Whether a pipeline starts its queued tasks (spec §4.3)."""

    ACTIVE = "Active"  # queued tasks start (inside the daily window, if one is set)
    PAUSED = "Paused"  # queued tasks wait; running tasks finish


@dataclass(frozen=True)
class Preset:
    """A stored preset: ``param`` and ``preset_type`` exactly as the client sent them."""

    name: str
    preset_type: str
    description: str
    param: dict[str, Any]
    kshd: int | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Pipeline:
    """A user's queue and its settings. ``usual`` exists for every user."""

    name: str
    state: PipelineState
    description: str
    regular_start: str  # "HH:MM:SS" in UTC+8, or "" for no window
    regular_duration: int  # seconds; 0 = no window
    quota: int  # the user's tasks of this pipeline that may run at once
