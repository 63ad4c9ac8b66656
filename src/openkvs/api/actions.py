"""The action table: KVS action name → service function.

Every handler takes ``(services, user, params)`` and returns the members it adds to the
envelope; it raises :class:`~openkvs.errors.ApiError` for business errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openkvs.model import User
from openkvs.service import params as p
from openkvs.service.context import Services
from openkvs.service.tasks import get_task_by_task_id
from openkvs.service.waves import create_wave_task

Handler = Callable[[Services, User, p.Params], dict[str, Any]]


def _create_wave_task(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    return {"TaskID": create_wave_task(services, user, params)}


ACTIONS: dict[str, Handler] = {
    "CreateWaveTask": _create_wave_task,
    "GetTaskByTaskID": get_task_by_task_id,
}
