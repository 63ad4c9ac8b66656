"""Structured logs: a stable event name as the message, the facts as fields."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _iso_time(created: float) -> str:
    """ISO 8601 local time with its UTC offset, to the millisecond:
    ``2024-03-15T10:04:05.123+08:00`` (the same in text and JSON lines)."""
    return datetime.fromtimestamp(created, UTC).astimezone().isoformat(timespec="milliseconds")


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self._json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
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


def setup(*, as_json: bool = False, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(as_json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
