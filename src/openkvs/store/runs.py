"""What a task's run did (``task_runs``): its phase, the command that ran, the failure log."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from openkvs.store.schema import task_runs

#: The most of a failure log kept (its end: where ffmpeg says why it failed).
MAX_LOG = 8 * 1024


@dataclass(frozen=True)
class TaskRun:
    task_id: str
    phase: str  # "", "transcoding" or "uploading"
    command: str  # shell-quoted, several joined with " && "; "" before any ran
    log: str  # the end of the failing program's stderr; "" unless the run failed


class RunStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _upsert(self, task_id: str, now: float, **values: str) -> None:
        with self._engine.begin() as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            statement = insert(task_runs).values(
                task_id=task_id,
                phase=values.get("phase", ""),
                command=values.get("command", ""),
                log=values.get("log", ""),
                updated_at=now,
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[task_runs.c.task_id], set_={**values, "updated_at": now}
                )
            )

    def set_phase(self, task_id: str, phase: str, now: float) -> None:
        self._upsert(task_id, now, phase=phase)

    def set_command(self, task_id: str, command: str, now: float) -> None:
        """The command of this run; a new run (another attempt) starts with no log."""
        self._upsert(task_id, now, command=command, log="")

    def set_log(self, task_id: str, log: str, now: float) -> None:
        self._upsert(task_id, now, log=log[-MAX_LOG:])

    def get(self, task_id: str) -> TaskRun | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(task_runs).where(task_runs.c.task_id == task_id)).first()
        return None if row is None else TaskRun(row.task_id, row.phase, row.command, row.log)
