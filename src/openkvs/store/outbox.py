"""The callback outbox: every statement on ``callbacks`` and ``callback_attempts``.

A callback is written by :func:`enqueue` inside the transaction that finishes its task, so
a finished task always has its callback and an unfinished one never does. The notifier
takes due callbacks with :meth:`OutboxStore.take_due`, which pushes ``next_attempt_at`` ahead
as a lease: a notifier that dies mid-attempt leaves the callback to be taken again later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Row, select, update

from openkvs.model import Callback, DeliveryState
from openkvs.store.schema import callback_attempts, callbacks


def enqueue(
    conn: Connection, *, task_id: str, url: str, body: dict[str, object], now: float
) -> None:
    """Add a callback to the outbox, in the caller's transaction."""
    conn.execute(
        callbacks.insert().values(
            task_id=task_id,
            url=url,
            body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
            state=DeliveryState.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


@dataclass(frozen=True)
class Attempt:
    """One recorded delivery attempt."""

    attempt: int
    started_at: float
    duration_ms: int
    http_status: int | None
    error: str


def _callback(row: Row) -> Callback:
    return Callback(
        id=row.id,
        task_id=row.task_id,
        url=row.url,
        body=row.body,
        state=DeliveryState(row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
    )


class OutboxStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def take_due(self, now: float, lease_seconds: float, limit: int = 10) -> list[Callback]:
        """Pending callbacks whose next attempt is due, leased for ``lease_seconds``."""
        with self._engine.begin() as conn:
            due = (
                select(callbacks.c.id)
                .where(
                    callbacks.c.state == DeliveryState.PENDING.value,
                    callbacks.c.next_attempt_at <= now,
                )
                .order_by(callbacks.c.next_attempt_at, callbacks.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            ids = [r.id for r in conn.execute(due)]
            if not ids:
                return []
            rows = conn.execute(
                update(callbacks)
                .where(callbacks.c.id.in_(ids))
                .values(next_attempt_at=now + lease_seconds)
                .returning(*callbacks.c)
            ).all()
        return sorted((_callback(r) for r in rows), key=lambda c: c.id)

    def record_attempt(
        self,
        callback: Callback,
        attempt: Attempt,
        *,
        delivered: bool,
        next_attempt_at: float | None,
    ) -> DeliveryState:
        """Record one attempt; the callback is delivered, retried at ``next_attempt_at``
        or, when that is None, failed for good. Returns the new state."""
        if delivered:
            state = DeliveryState.DELIVERED
        elif next_attempt_at is None:
            state = DeliveryState.FAILED
        else:
            state = DeliveryState.PENDING
        with self._engine.begin() as conn:
            conn.execute(
                callback_attempts.insert().values(
                    callback_id=callback.id,
                    attempt=attempt.attempt,
                    started_at=attempt.started_at,
                    duration_ms=attempt.duration_ms,
                    http_status=attempt.http_status,
                    error=attempt.error,
                )
            )
            values: dict[str, object] = {"state": state.value, "attempts": attempt.attempt}
            if state is DeliveryState.PENDING:
                values["next_attempt_at"] = next_attempt_at
            else:
                values["finished_at"] = attempt.started_at + attempt.duration_ms / 1000
            conn.execute(update(callbacks).where(callbacks.c.id == callback.id).values(**values))
        return state

    def for_task(self, task_id: str) -> list[tuple[Callback, list[Attempt]]]:
        """Every callback of a task with its attempts, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(callbacks).where(callbacks.c.task_id == task_id).order_by(callbacks.c.id)
            ).all()
            out = []
            for row in rows:
                attempts = conn.execute(
                    select(callback_attempts)
                    .where(callback_attempts.c.callback_id == row.id)
                    .order_by(callback_attempts.c.attempt)
                ).all()
                out.append(
                    (
                        _callback(row),
                        [
                            Attempt(a.attempt, a.started_at, a.duration_ms, a.http_status, a.error)
                            for a in attempts
                        ],
                    )
                )
        return out

    def next_due_at(self) -> float | None:
        """When the earliest pending callback is due, if any."""
        with self._engine.connect() as conn:
            value = conn.execute(
                select(callbacks.c.next_attempt_at)
                .where(callbacks.c.state == DeliveryState.PENDING.value)
                .order_by(callbacks.c.next_attempt_at)
                .limit(1)
            ).scalar()
        return None if value is None else float(value)
