"""The submission fields every task-creating action shares (spec §2.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openkvs import metrics
from openkvs.errors import ApiError, invalid
from openkvs.model import NewTask, User
from openkvs.notify.policy import AddressPolicy
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

    @property
    def client_token(self) -> str:
        """ExtParam ``ClientToken`` ("" when not given); checked by ``read_submission``."""
        return client_token(self.ext)

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
    policy = AddressPolicy(services.settings.callback_allow)
    cb_url = p.callback_url(params, policy)
    cb_method = p.optional_str(params, "CbMethod", "POST")
    if cb_method.upper() not in ("POST", "GET"):
        raise invalid("CbMethod", "must be POST or GET")
    ext_raw, ext = p.ext_param(params)
    client_token(ext)  # 1018 for a bad token, before anything is looked up
    _progress_url(ext, policy)
    pipeline = pipelines.for_new_task(services, user, params)
    return Submission(acl, cb_url, cb_method, ext_raw, ext, pipeline, p.flag(params, "IsTop"))


#: The longest ExtParam ``Callback.progress_interval`` accepted (seconds).
MAX_PROGRESS_INTERVAL = 3600


def _progress_url(ext: dict[str, Any], policy: AddressPolicy) -> None:
    """ExtParam ``Callback.progress_cburl`` (progress callbacks) obeys the CbUrl rules."""
    settings = ext.get("Callback")
    if settings is None:
        return
    if not isinstance(settings, dict):
        raise ApiError(1018, "ExtParam.Callback must be an object")
    interval = settings.get("progress_interval")
    if interval is not None and interval != "":
        try:
            seconds = p.to_int("ExtParam.Callback.progress_interval", interval)
        except ApiError:
            seconds = 0
        if not 1 <= seconds <= MAX_PROGRESS_INTERVAL:
            raise ApiError(
                1018,
                "ExtParam.Callback.progress_interval must be whole seconds from 1 to "
                f"{MAX_PROGRESS_INTERVAL}, got {interval!r}",
            )
    url = settings.get("progress_cburl")
    if url is None or url == "":
        return
    if not isinstance(url, str):
        raise ApiError(1018, "ExtParam.Callback.progress_cburl must be a string")
    name = "ExtParam.Callback.progress_cburl"
    p.callback_url({name: url}, policy, name)


#: ExtParam ``ClientToken``: at most this many printable ASCII characters.
MAX_CLIENT_TOKEN = 64


def client_token(ext: dict[str, Any]) -> str:
    """ExtParam ``ClientToken``, "" when absent or empty; 1018 unless it is a string of 1 to
    64 printable ASCII characters (space to ``~``)."""
    token = ext.get("ClientToken")
    if token is None or token == "":
        return ""
    if (
        not isinstance(token, str)
        or len(token) > MAX_CLIENT_TOKEN
        or not all(" " <= c <= "~" for c in token)
    ):
        raise ApiError(
            1018, f"ExtParam ClientToken must be 1-{MAX_CLIENT_TOKEN} printable ASCII characters"
        )
    return token


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
    """Store the task (it is then acknowledged) and wake this process's workers; returns
    its TaskID. A ``ClientToken`` the user used in the last 24 hours stores nothing and
    returns the TaskID of the task that first used it."""
    now = services.clock()
    task_id = new_task_id(now)
    stored = services.tasks.create(
        NewTask(
            task_id=task_id,
            user_id=user.id,
            action=action,
            task_type=task_type,
            preset=preset,
            pipeline=submission.pipeline,
            is_top=submission.is_top,
            # "user": the owner's name, for the task's log lines (logs.task_context).
            request={**request, **submission.request(), "user": user.name},
        ),
        now,
        client_token=submission.client_token,
    )
    if stored == task_id:
        metrics.task_created(task_type)
        services.task_queued()
    return stored
