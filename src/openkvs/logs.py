"""Structured logs: a stable event name as the message, the facts as fields.

Lines go to standard error (text, or JSON lines with ``OPENKVS_LOG_JSON``) and, for the
long-running commands (``serve``, ``worker``), also as JSON lines into the log folder
(``OPENKVS_LOG_DIR``, default ``<data_dir>/logs``): one file per process,
``<host>-<pid>.jsonl``, rotated by size, files older than ``OPENKVS_LOG_KEEP_DAYS`` removed
when a process starts. ``openkvs logs TASKID`` reads them.

While a worker thread runs a task, :func:`task_context` marks every line that thread logs
with the task's ``task_id`` and ``user`` (a line that names them itself keeps its own), so a
task's whole story — claim, each ffmpeg command, progress, upload, end, each callback
attempt — can be found by its TaskID.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import logging.handlers
import os
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
#: The task a thread is working on: fields added to each of its lines.
_TASK: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "openkvs_task", default=None
)
#: Size of one log file before it is rotated, and how many rotated files a process keeps.
FILE_BYTES = 20 * 1024 * 1024
FILE_BACKUPS = 5
SUFFIX = ".jsonl"


def _iso_time(created: float) -> str:
    """ISO 8601 local time with its UTC offset, to the millisecond:
    ``2024-03-15T10:04:05.123+08:00`` (the same in text and JSON lines)."""
    return datetime.fromtimestamp(created, UTC).astimezone().isoformat(timespec="milliseconds")


@contextlib.contextmanager
def task_context(
    task_id: str, user: str | int | None = None, *, parent_id: str | None = None
) -> Iterator[None]:
    """Lines logged by this thread (or task) meanwhile carry ``task_id`` and ``user`` (and
    ``parent_id`` for a part of a split task)."""
    fields: dict[str, Any] = {"task_id": task_id}
    if user not in (None, ""):
        fields["user"] = user
    if parent_id:
        fields["parent_id"] = parent_id
    token = _TASK.set(fields)
    try:
        yield
    finally:
        _TASK.reset(token)


class _TaskFields(logging.Filter):
    """Adds the current task's fields to a record that does not carry them."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _TASK.get()
        if fields:
            for key, value in fields.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's own fields; ``task_id`` first when it has one (lines of a task read
    ``event task_id=… …`` whichever part of the code logged them)."""
    fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
    if "task_id" in fields:
        fields = {"task_id": fields.pop("task_id"), **fields}
    return fields


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self._json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        if self._json:
            entry = {
                "time": _iso_time(record.created),
                "level": record.levelname,
                "logger": record.name,
                "event": record.getMessage(),
                **fields,
            }
            if record.exc_info:
                entry["exc"] = self.formatException(record.exc_info)
            return json.dumps(entry, default=str)
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        line = f"{_iso_time(record.created)} {record.levelname:<7} {record.getMessage()} {text}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line.rstrip()


def setup(
    *,
    as_json: bool = False,
    level: int = logging.INFO,
    folder: Path | None = None,
    keep_days: float = 7.0,
) -> None:
    """Logging of this process: standard error, and JSON lines in ``folder`` when given
    (one file per process; a process forked later opens its own)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(as_json))
    handler.addFilter(_TaskFields())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        prune(folder, keep_days)
        _add_file(folder)
        os.register_at_fork(after_in_child=lambda: _add_file(folder))


def _add_file(folder: Path) -> None:
    """A JSON-lines file of this process in ``folder`` (replacing one inherited by fork)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ProcessFile)]:
        root.removeHandler(old)
        with contextlib.suppress(Exception):
            old.close()
    path = folder / f"{socket.gethostname()}-{os.getpid()}{SUFFIX}"
    handler = _ProcessFile(path, maxBytes=FILE_BYTES, backupCount=FILE_BACKUPS, delay=True)
    handler.setFormatter(_Formatter(True))
    handler.addFilter(_TaskFields())
    root.addHandler(handler)


class _ProcessFile(logging.handlers.RotatingFileHandler):
    """This process's log file (owner-only)."""

    def _open(self) -> Any:
        stream = super()._open()
        with contextlib.suppress(OSError):
            os.chmod(self.baseFilename, 0o600)
        return stream


def prune(folder: Path, keep_days: float) -> int:
    """Remove log files not written for ``keep_days`` days; returns how many."""
    cutoff = time.time() - keep_days * 86400
    removed = 0
    for path in folder.glob(f"*{SUFFIX}*"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


def task_lines(folder: Path, task_id: str) -> list[dict[str, Any]]:
    """Every logged line of ``task_id`` in ``folder``'s files (rotated ones included),
    oldest first. A line belongs to a task when its ``task_id`` or ``parent_id`` (the lines
    of a split transcode's parts) is the TaskID."""
    found: list[dict[str, Any]] = []
    for path in sorted(folder.glob(f"*{SUFFIX}*")):
        found += _matching(_read_lines(path), task_id)
    found.sort(key=lambda entry: str(entry.get("time", "")))
    return found


def _read_lines(path: Path) -> Iterable[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            yield from fh
    except OSError:
        return


def _matching(lines: Iterable[str], task_id: str) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        if task_id not in line:  # cheap: most lines are someone else's
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and task_id in (entry.get("task_id"), entry.get("parent_id")):
            out.append(entry)
    return out


def as_text(entry: dict[str, Any]) -> str:
    """One JSON-lines entry as the text line standard error would have shown."""
    rest = {k: v for k, v in entry.items() if k not in ("time", "level", "logger", "event", "exc")}
    text = " ".join(f"{k}={v}" for k, v in rest.items())
    line = f"{entry.get('time', '')} {entry.get('level', ''):<7} {entry.get('event', '')} {text}"
    if entry.get("exc"):
        line += "\n" + str(entry["exc"])
    return line.rstrip()
