"""``openkvs logs TASKID``: a task's whole story from the log files of ``serve`` and
``worker`` (see ``openkvs.logs``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from openkvs import config as config_mod
from openkvs import logs
from openkvs.config import ConfigError


@click.command("logs")
@click.argument("task_id")
@click.option(
    "--dir",
    "folders",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="log folder to read (repeatable; default OPENKVS_LOG_DIR or <data_dir>/logs): "
    "collect the folders of a fleet's machines to read them together",
)
@click.option("--json", "as_json", is_flag=True, help="print the JSON lines as written")
def logs_command(task_id: str, folders: tuple[Path, ...], as_json: bool) -> None:
    """Print every log line of TASKID, oldest first: its claim, each ffmpeg command, its
    progress, upload and end, each callback attempt (and the lines of its parts, for a
    split transcode), from every process that wrote into the log folder."""
    if not folders:
        try:
            folders = (config_mod.load().logs_dir,)
        except ConfigError as exc:
            raise click.ClickException(f"bad configuration: {exc}") from exc
    found = []
    for folder in folders:
        found += logs.task_lines(folder, task_id)
    found.sort(key=lambda entry: str(entry.get("time", "")))
    if not found:
        shown = ", ".join(str(f) for f in folders)
        raise click.ClickException(f"no log lines of task {task_id} in {shown}")
    for entry in found:
        click.echo(json.dumps(entry, ensure_ascii=False) if as_json else logs.as_text(entry))
