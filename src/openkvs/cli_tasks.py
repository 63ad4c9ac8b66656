"""``openkvs task`` and ``openkvs preset``: tasks and presets for people at a terminal.

These commands work on the local data folder (or ``OPENKVS_DATABASE_URL``) directly, as
``openkvs keys`` does, acting as one user (``--user``, default ``default``); a running
``openkvs serve`` or ``openkvs worker`` picks the submitted tasks up.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
from openkvs.service.tasks import find_task, get_task_by_task_id
from openkvs.service.waves import create_wave_task

_USER = click.option("--user", default="default", show_default=True, help="acting user")


@contextmanager
def _session(user_name: str) -> Iterator[tuple[Services, User]]:
    """The services on the configured store, acting as ``user_name``."""
    try:
        settings = config_mod.load()
    except ConfigError as exc:
        raise click.ClickException(f"bad configuration: {exc}") from exc
    services, engine = open_services(settings)
    try:
        yield services, services.users.ensure_user(user_name)
    finally:
        engine.dispose()


def _call(user_name: str, handler: Any, params: dict[str, Any]) -> Any:
    """One service call as ``user_name``; a business error ends the command (exit 1)."""
    with _session(user_name) as (services, owner):
        return _answer(lambda: handler(services, owner, params))


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
@click.option("--dst", default="", help="output object, /bucket/key (DstBucket, DstObjectKey)")
@click.option("--dst-dir", default="", help="output folder, /bucket/dir/ (DstBucket, DstDir)")
@click.option("--acl", type=click.Choice(["private", "public-read"]), help="DstAcl of the outputs")
@click.option("--ext-param", default="", metavar="JSON", help="ExtParam, a JSON object")
@click.option("--pipeline", default="", help="pipeline (queue) name; default `usual`")
@click.option("--points", type=int, default=800, show_default=True, help="points (wave)")
@click.option("--cb-url", default="", help="completion callback URL")
@click.option("--top", is_flag=True, help="put the task ahead of the queue")
@click.option("--wait", is_flag=True, help="wait for the end, showing progress")
@_USER
def task_submit(
    preset: str,
    src: str,
    dst: str,
    dst_dir: str,
    acl: str | None,
    ext_param: str,
    pipeline: str,
    points: int,
    cb_url: str,
    top: bool,
    wait: bool,
    user: str,
) -> None:
    """Queue a task; prints its TaskID (with --wait, its final state)."""
    params: dict[str, Any] = {
        "Preset": preset,
        "SrcInfo": [{"path": src}],
        "CbUrl": cb_url,
        "IsTop": int(top),
        **_destination(dst, dst_dir),
    }
    if acl:
        params["DstAcl"] = acl
    if ext_param:
        params["ExtParam"] = ext_param
    if pipeline:
        params["Pipeline"] = pipeline
    with _session(user) as (services, owner):
        if preset == "wave":
            params["points"] = points
            task_id = _answer(lambda: create_wave_task(services, owner, params))
        else:
            task_id = _answer(lambda: create_task(services, owner, params))
        click.echo(task_id)
        if wait:
            _wait(services, owner, task_id)


def _destination(dst: str, dst_dir: str) -> dict[str, str]:
    """``DstBucket`` with ``DstObjectKey`` (``--dst /bucket/key``) and/or ``DstDir``
    (``--dst-dir /bucket/dir/``); both name the same bucket."""
    fields: dict[str, str] = {}
    buckets = set()
    if dst:
        bucket, _, key = dst.lstrip("/").partition("/")
        fields["DstObjectKey"] = key
        buckets.add(bucket)
    if dst_dir:
        bucket, _, folder = dst_dir.lstrip("/").partition("/")
        fields["DstDir"] = folder
        buckets.add(bucket)
    if len(buckets) > 1:
        raise click.UsageError("--dst and --dst-dir must name the same bucket")
    fields["DstBucket"] = buckets.pop() if buckets else ""
    return fields


#: Seconds between two looks at a waited-for task.
WAIT_POLL = 0.2
BAR_WIDTH = 30


def _progress_text(info: dict[str, Any]) -> str:
    """``exec transcoding 42%``: TaskStatus, ProgressStatus (when running) and Progress."""
    words = [info["TaskStatus"], info.get("ProgressStatus") or "", f"{info['Progress']}%"]
    return " ".join(word for word in words if word)


def _bar(info: dict[str, Any]) -> str:
    done = round(BAR_WIDTH * int(info["Progress"]) / 100)
    return f"[{'#' * done}{'.' * (BAR_WIDTH - done)}] {_progress_text(info)}"


def _wait(services: Services, owner: User, task_id: str) -> None:
    """Follow the task as GetTaskByTaskID shows it until it ends: on a terminal a bar
    redrawn in place, otherwise one line each time the state or progress changes."""
    terminal = sys.stderr.isatty()
    shown, width = "", 0
    while True:
        info = _answer(lambda: get_task_by_task_id(services, owner, {"TaskID": task_id}))[
            "TaskInfo"
        ]
        text = _progress_text(info)
        if text != shown:
            if terminal:
                line = _bar(info)
                click.echo(f"\r{line:<{width}}", nl=False, err=True)
                width = max(width, len(line))
            else:
                click.echo(text, err=True)
            shown = text
        if info["TaskStatus"] in (TaskStatus.SUCC.value, TaskStatus.FAIL.value):
            break
        time.sleep(WAIT_POLL)
    if terminal:
        click.echo("", err=True)
    if info["TaskStatus"] == TaskStatus.FAIL.value:
        raise click.ClickException(f"task failed: {info['ErrorCode']} {info['ErrorMsg']}")
    record = _answer(lambda: find_task(services, owner, {"TaskID": task_id}))
    click.echo(f"succ {json.dumps(record.result, ensure_ascii=False)}")


@task.command("show")
@click.argument("task_id")
@_USER
def task_show(task_id: str, user: str) -> None:
    """Print a task as GetTaskByTaskID returns it, plus ``Log``: the end of the failing
    program's error output ("" unless a run failed; for the operator, never in the API)."""
    with _session(user) as (services, owner):
        info = _answer(lambda: get_task_by_task_id(services, owner, {"TaskID": task_id}))
        run = services.runs.get(task_id)
    _echo_json({**info["TaskInfo"], "Log": run.log if run is not None else ""})


@task.command("list")
@click.option("--status", default="", help="init, exec, succ or fail")
@click.option("--limit", default=20, show_default=True, type=int)
@_USER
def task_list(status: str, limit: int, user: str) -> None:
    """List this month's tasks, newest first: id, status, error code, preset, created."""
    page = _call(user, get_task_list, {"TaskStatus": status, "Limit": limit})
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
    for item in _call(user, get_preset_list, {})["PresetList"]:
        click.echo(f"{item['Preset']:<32}  {item['PresetType']:<12}  {item['Description']}")


@preset.command("show")
@click.argument("name")
@_USER
def preset_show(name: str, user: str) -> None:
    """Print a preset as GetPresetDetail returns it."""
    _echo_json(_call(user, get_preset_detail, {"Preset": name})["PresetDetail"])
