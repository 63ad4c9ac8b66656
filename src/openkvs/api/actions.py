"""The action table: KVS action name → service function.

Every handler takes ``(services, user, params)`` and returns the members it adds to the
envelope; it raises :class:`~openkvs.errors.ApiError` for business errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openkvs.api.routing import WHOLE_BODY
from openkvs.model import User
from openkvs.service import console, pipelines, presets, presign, stats, task_admin
from openkvs.service import params as p
from openkvs.service.batch import NO_BODY, batch_create_task
from openkvs.service.context import Services
from openkvs.service.flows import create_flow_task
from openkvs.service.metainfo import fetch_meta_info
from openkvs.service.task_create import create_task
from openkvs.service.tasks import get_task_by_task_id
from openkvs.service.waves import create_wave_task

Handler = Callable[[Services, User, p.Params], dict[str, Any]]


def _create_wave_task(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    return {"TaskID": create_wave_task(services, user, params)}


def _create_task(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    return {"TaskID": create_task(services, user, params)}


def _create_flow_task(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    return {"TaskID": create_flow_task(services, user, params)}


def _batch_create_task(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    return batch_create_task(services, user, params.get(WHOLE_BODY, NO_BODY))


#: Actions whose POST body is not an object of parameters, but passed whole (a JSON array).
WHOLE_BODY_ACTIONS = frozenset({"BatchCreateTask"})


ACTIONS: dict[str, Handler] = {
    "Preset": presets.create_preset,
    "UpdatePreset": presets.update_preset,
    "DelPreset": presets.del_preset,
    "GetPresetList": presets.get_preset_list,
    "GetPresetDetail": presets.get_preset_detail,
    "CreateTask": _create_task,
    "BatchCreateTask": _batch_create_task,
    "CreateFlowTask": _create_flow_task,
    "CreateWaveTask": _create_wave_task,
    "DelTaskByTaskID": task_admin.del_task,
    "TopTaskByTaskID": task_admin.top_task,
    "GetTaskList": task_admin.get_task_list,
    "GetTaskByTaskID": get_task_by_task_id,
    "GetTaskMetaInfo": task_admin.get_task_meta_info,
    "FetchMetaInfo": fetch_meta_info,
    "UpdatePipeline": pipelines.update_pipeline,
    "QueryPipeline": pipelines.query_pipeline,
    "QueryTaskStats": stats.query_task_stats,
    "GetInterfaceNumber": stats.get_interface_number,
    "GetMediaTransDuration": stats.get_media_trans_duration,
    "GetScreenshotNumber": stats.get_screenshot_number,
    "FetchObjectMediaProcess": console.fetch_object_media_process,
    "ListFetchObjectMediaProcess": console.list_fetch_object_media_process,
    "GetFetchObjectMediaProcess": console.get_fetch_object_media_process,
    "GetObjectURL": presign.get_object_url,  # openkvs extension: presigned object URLs
}
