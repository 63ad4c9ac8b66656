"""Task identifiers and the UTC+8 calendar the API speaks (spec §1.6)."""

from __future__ import annotations

import functools
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "UTC+8")

_TASK_ID = re.compile(r"^[0-9a-z]{40}$")


def new_task_id(now: float) -> str:
    """32 lowercase hex characters and the creation date YYYYMMDD in UTC+8."""
    return uuid.uuid4().hex + datetime.fromtimestamp(now, CST).strftime("%Y%m%d")


def looks_like_task_id(value: str) -> bool:
    """Any 40-character ``[0-9a-z]`` string is accepted when looking a task up."""
    return bool(_TASK_ID.match(value))


def cst_text(ts: float | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC+8, or "" for no time."""
    if ts is None:
        return ""
    return _cst_text(ts)


@functools.lru_cache(maxsize=4096)
def _cst_text(ts: float) -> str:
    # Remembered: the same tasks' times are formatted again on every GetTaskList page and
    # GetTaskByTaskID, and formatting costs more than the lookup.
    return datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d %H:%M:%S")


def utc_now() -> datetime:
    return datetime.now(UTC)
