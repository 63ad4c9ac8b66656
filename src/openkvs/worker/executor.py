"""What the pool runs: one executor per preset type.

An executor reads its sources from storage, runs the engine, writes its outputs, and
returns the callback ``items`` (spec §5.3). It raises :class:`~openkvs.errors.TaskError`
for every failure a client should see; the pool maps anything else to 2001.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from openkvs.model import TaskRecord


class Executor(Protocol):
    def run(self, task: TaskRecord, cancel: threading.Event) -> list[dict[str, Any]]: ...
