"""Pipelines (spec §2.15, §2.16, §4.3): settings, and which may start tasks now."""

from __future__ import annotations

import re
from typing import Any

from openkvs.errors import ApiError, invalid
from openkvs.model import Pipeline, PipelineState, TaskStatus, User
from openkvs.service import params as p
from openkvs.service.context import Services
from openkvs.store.queue import day_seconds

DEFAULT = "usual"
COUNTER_DAYS = 90
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d):([0-5]\d)$")


def check_name(name: str, field: str = "PipelineName") -> str:
    if not _NAME.match(name):
        raise ApiError(1022, f"{field} {name!r} must be 1-64 of A-Z a-z 0-9 _ -")
    return name


def default_pipeline(services: Services) -> Pipeline:
    return Pipeline(DEFAULT, PipelineState.ACTIVE, "", "", 0, services.settings.pipeline_quota)


def find(services: Services, user: User, name: str) -> Pipeline | None:
    """The user's pipeline; ``usual`` exists for everyone, with defaults until updated."""
    stored = services.pipelines.get(user.id, name)
    if stored is None and name == DEFAULT:
        return default_pipeline(services)
    return stored


def for_new_task(services: Services, user: User, params: p.Params) -> str:
    """The ``Pipeline`` of a task being created: 1022 for a bad or unknown name."""
    name = check_name(p.optional_str(params, "Pipeline", DEFAULT), "Pipeline")
    if find(services, user, name) is None:
        raise ApiError(1022, f"Pipeline {name!r} does not exist (UpdatePipeline creates it)")
    return name


def window_open(regular_start: str, duration: int, now: float) -> bool:
    """Whether ``now`` falls in the daily window (UTC+8) that starts at ``regular_start``.

    The queue's claim applies the same rule in SQL (``store/queue.py``), with the same
    clock (:func:`~openkvs.store.queue.day_seconds`); a test checks that they agree."""
    if not regular_start or duration <= 0 or duration >= 86400:
        return True
    h, m, s = (int(x) for x in regular_start.split(":"))
    return (day_seconds(now) - (h * 3600 + m * 60 + s)) % 86400 < duration


def update_pipeline(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    name = check_name(p.required_str(params, "PipelineName"))
    current = find(services, user, name) or Pipeline(
        name, PipelineState.ACTIVE, "", "", 0, services.settings.pipeline_quota
    )
    state = p.optional_str(params, "State", current.state.value)
    if state not in {s.value for s in PipelineState}:
        raise ApiError(1024, f"State {state!r} must be Active or Paused")
    start = p.optional_str(params, "RegularStart", current.regular_start)
    if start and not _CLOCK.match(start):
        raise invalid("RegularStart", "must be HH:MM:SS")
    duration = current.regular_duration
    if p.given(params, "RegularDuration"):
        duration = p.required_int(params, "RegularDuration", 0, 86400)
    quota = current.quota
    if p.given(params, "Quota"):
        quota = p.required_int(params, "Quota", 1, services.settings.max_pipeline_quota)
    pipeline = Pipeline(
        name=name,
        state=PipelineState(state),
        description=p.optional_str(params, "Description", current.description),
        regular_start=start if duration else "",
        regular_duration=duration if start else 0,
        quota=quota,
    )
    # A resumed or widened pipeline may start tasks now: the store tells other processes'
    # workers (PostgreSQL NOTIFY), task_queued this process's.
    services.pipelines.put(user.id, pipeline, services.clock())
    services.task_queued()
    return {}


def counters(counts: dict[TaskStatus, int]) -> dict[str, int]:
    """The ``TaskStatus`` object of QueryPipeline and QueryTaskStats."""
    running = counts.get(TaskStatus.EXEC, 0)
    pending = counts.get(TaskStatus.INIT, 0)
    success = counts.get(TaskStatus.SUCC, 0)
    failed = counts.get(TaskStatus.FAIL, 0)
    return {
        "Total": running + pending + success + failed,
        "Running": running,
        "Pending": pending,
        "Success": success,
        "Failed": failed,
    }


def query_pipeline(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    name = check_name(p.optional_str(params, "PipelineName", DEFAULT))
    pipeline = find(services, user, name)
    if pipeline is None:
        raise ApiError(1023, f"pipeline {name!r} has not been created")
    since = services.clock() - COUNTER_DAYS * 86400
    counts = services.tasks.status_counts(user.id, since, pipeline=name)
    return {
        "PipelineName": name,
        "State": pipeline.state.value,
        "Description": pipeline.description,
        "RegularStart": pipeline.regular_start,
        "RegularDuration": pipeline.regular_duration,
        "Quota": pipeline.quota,
        "TaskStatus": counters(counts),
    }
