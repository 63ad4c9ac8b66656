"""The submission fields every task-creating action shares (spec §2.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openkvs.errors import invalid
from openkvs.model import NewTask, User
from openkvs.service import params as p
from openkvs.service import pipelines
from openkvs.service.context import Services
from openkvs.service.ids import new_task_id


@dataclass(frozen=True)
class Submission:
    """``DstAcl``, ``CbUrl``, ``CbMethod``, ``ExtParam``, ``Pipeline`` and ``IsTop``."""

    acl: str
    cb_url: str
    cb_method: str
    ext_raw: str
    ext: dict[str, Any]
    pipeline: str
    is_top: bool

    def request(self) -> dict[str, Any]:
        """The members GetTaskByTaskID echoes."""
        return {
            "DstAcl": self.acl,
            "CbUrl": self.cb_url,
            "CbMethod": self.cb_method,
            "ExtParam": self.ext_raw,
        }


def read_submission(services: Services, user: User, params: p.Params) -> Submission:
    acl = p.acl(params)
    cb_url = p.callback_url(params)
    cb_method = p.optional_str(params, "CbMethod", "POST")
    if cb_method.upper() not in ("POST", "GET"):
        raise invalid("CbMethod", "must be POST or GET")
    ext_raw, ext = p.ext_param(params)
    pipeline = pipelines.for_new_task(services, user, params)
    return Submission(acl, cb_url, cb_method, ext_raw, ext, pipeline, p.flag(params, "IsTop"))


def queue_task(
    services: Services,
    user: User,
    *,
    action: str,
    task_type: str,
    preset: str,
    submission: Submission,
    request: dict[str, Any],
) -> str:
    """Store the task (it is then acknowledged) and wake this process's workers."""
    now = services.clock()
    task_id = new_task_id(now)
    services.tasks.create(
        NewTask(
            task_id=task_id,
            user_id=user.id,
            action=action,
            task_type=task_type,
            preset=preset,
            pipeline=submission.pipeline,
            is_top=submission.is_top,
            request={**request, **submission.request()},
        ),
        now,
    )
    services.task_queued()
    return task_id
