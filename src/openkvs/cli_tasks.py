"""``openkvs task`` and ``openkvs preset``: tasks and presets for people at a terminal.

These commands work on the local data folder (or ``OPENKVS_DATABASE_URL``) directly, as
``openkvs keys`` does, acting as one user (``--user``, default ``default``); a running
``openkvs serve`` or ``openkvs worker`` picks the submitted tasks up.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from openkvs import config as config_mod
from openkvs.config import ConfigError
from openkvs.errors import ApiError
from openkvs.model import TaskStatus, User
from openkvs.runtime import open_services
from openkvs.service.context import Services
from openkvs.service.presets import get_preset_detail, get_preset_list
from openkvs.service.task_admin import get_task_list
from openkvs.service.task_create import create_task
from openkvs.service.tasks import find_task, task_info
from openkvs.service.waves import create_wave_task

_USER = click.option("--user", default="default", show_default=True, help="acting user")


def _open(user_name: str) -> tuple[Services, User, Any]:
    try:
        settings = config_mod.load()
    except ConfigError as exc:
        raise click.ClickException(f"bad configuration: {exc}") from exc
    services, engine = open_services(settings)
    user = services.users.ensure_user(user_name)
    return services, user, engine


def _answer(call: Any) -> Any:
    try:
        return call()
    except ApiError as exc:
        raise click.ClickException(f"{exc.code} {exc.message}") from exc


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@click.group()
def task() -> None:
    """Submit, show and list tasks."""


@task.command("submit")
@click.option("--preset", required=True, help="preset name (`wave` for a waveform)")
@click.option("--src", required=True, help="source object, /bucket/key")
@click.option("--dst", default="", help="output object, /bucket/key")
@click.option("--points", type=int, default=800, show_default=True, help="points (wave)")
@click.option("--cb-url", default="", help="completion callback URL")
@click.option("--top", is_flag=True, help="put the task ahead of the queue")
@click.option("--wait", is_flag=True, help="wait for the end, showing progress")
@_USER
def task_submit(
    preset: str, src: str, dst: str, points: int, cb_url: str, top: bool, wait: bool, user: str
) -> None:
    """Queue a task; prints its TaskID (with --wait, its final state)."""
    services, owner, engine = _open(user)
    try:
        bucket, _, key = dst.lstrip("/").partition("/")
        params: dict[str, Any] = {
            "Preset": preset,
            "SrcInfo": [{"path": src}],
            "DstBucket": bucket,
            "DstObjectKey": key,
            "CbUrl": cb_url,
            "IsTop": int(top),
        }
        if preset == "wave":
            params["points"] = points
            task_id = _answer(lambda: create_wave_task(services, owner, params))
        else:
            task_id = _answer(lambda: create_task(services, owner, params))
        click.echo(task_id)
        if wait:
            _wait(services, owner, task_id)
    finally:
        engine.dispose()


def _wait(services: Services, owner: User, task_id: str) -> None:
    shown = ""
    while True:
        record = _answer(lambda: find_task(services, owner, {"TaskID": task_id}))
        line = f"{record.status.value:<4} {record.progress:>3}%"
        if line != shown and sys.stderr.isatty():
            click.echo(f"\r{line}", nl=False, err=True)
        shown = line
        if record.status in (TaskStatus.SUCC, TaskStatus.FAIL):
            break
        time.sleep(0.2)
    if sys.stderr.isatty():
        click.echo("", err=True)
    if record.status is TaskStatus.FAIL:
        raise click.ClickException(f"task failed: {record.error_code} {record.error_msg}")
    click.echo(f"succ {json.dumps(record.result, ensure_ascii=False)}")


@task.command("show")
@click.argument("task_id")
@_USER
def task_show(task_id: str, user: str) -> None:
    """Print a task as GetTaskByTaskID returns it."""
    services, owner, engine = _open(user)
    try:
        _echo_json(task_info(_answer(lambda: find_task(services, owner, {"TaskID": task_id}))))
    finally:
        engine.dispose()


@task.command("list")
@click.option("--status", default="", help="init, exec, succ or fail")
@click.option("--limit", default=20, show_default=True, type=int)
@_USER
def task_list(status: str, limit: int, user: str) -> None:
    """List this month's tasks, newest first: id, status, error code, preset, created."""
    services, owner, engine = _open(user)
    try:
        page = _answer(
            lambda: get_task_list(services, owner, {"TaskStatus": status, "Limit": limit})
        )
    finally:
        engine.dispose()
    for info in page["TaskInfo"]:
        click.echo(
            f"{info['TaskID']}  {info['TaskStatus']:<4}  {info['ErrorCode']:>4}  "
            f"{info['Preset']:<20}  {info['CreateTime']}"
        )
    click.echo(f"{page['Count']} of {page['Total']} tasks from {page['StartDate']}", err=True)


@click.group()
def preset() -> None:
    """List and show presets."""


@preset.command("list")
@_USER
def preset_list(user: str) -> None:
    """Name, type and description of every preset."""
    services, owner, engine = _open(user)
    try:
        found = _answer(lambda: get_preset_list(services, owner, {}))["PresetList"]
    finally:
        engine.dispose()
    for item in found:
        click.echo(f"{item['Preset']:<32}  {item['PresetType']:<12}  {item['Description']}")


@preset.command("show")
@click.argument("name")
@_USER
def preset_show(name: str, user: str) -> None:
    """Print a preset as GetPresetDetail returns it."""
    services, owner, engine = _open(user)
    try:
        _echo_json(
            _answer(lambda: get_preset_detail(services, owner, {"Preset": name}))["PresetDetail"]
        )
    finally:
        engine.dispose()
