"""The callback outbox: every statement on ``callbacks`` and ``callback_attempts``.

A callback is written by :func:`enqueue` inside the transaction that finishes its task, so
a finished task always has its callback and an unfinished one never does. The notifier
takes due callbacks with :meth:`OutboxStore.take_due`, which pushes ``next_attempt_at`` ahead
as a lease: a notifier that dies mid-attempt leaves the callback to be taken again later.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Row, and_, or_, select, update

from openkvs.model import Callback, DeliveryState
from openkvs.store.schema import callback_attempts, callbacks, tasks

#: Due callbacks looked at per query, and in all per take, when ``admit`` passes over some.
_PAGE = 200
_MAX_SCAN = 5000


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


def _callback(row: Row, user_id: int | None = None) -> Callback:
    return Callback(
        id=row.id,
        task_id=row.task_id,
        url=row.url,
        body=row.body,
        state=DeliveryState(row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        user_id=user_id,
    )


class OutboxStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def take_due(
        self,
        now: float,
        lease_seconds: float,
        limit: int = 10,
        admit: Callable[[str], bool] | None = None,
    ) -> list[Callback]:
        """Up to ``limit`` pending callbacks whose next attempt is due, oldest first, leased
        for ``lease_seconds``, each with the user of its task.

        ``admit(url)`` may pass over a candidate (its destination already has its share of
        attempts in flight): it stays due, untouched, for a later take, and younger callbacks
        to other destinations are taken instead (at most ``_MAX_SCAN`` candidates are looked
        at). The lease is taken by one conditional UPDATE: a callback that another notifier
        leased meanwhile is no longer due and is left out.
        """
        chosen: list[int] = []
        with self._engine.connect() as conn:
            after: tuple[float, int] | None = None
            scanned = 0
            while len(chosen) < limit and scanned < _MAX_SCAN:
                query = (
                    select(callbacks.c.id, callbacks.c.url, callbacks.c.next_attempt_at)
                    .where(
                        callbacks.c.state == DeliveryState.PENDING.value,
                        callbacks.c.next_attempt_at <= now,
                    )
                    .order_by(callbacks.c.next_attempt_at, callbacks.c.id)
                    .limit(_PAGE)
                )
                if after is not None:  # keyset paging in the same order
                    query = query.where(
                        or_(
                            callbacks.c.next_attempt_at > after[0],
                            and_(
                                callbacks.c.next_attempt_at == after[0], callbacks.c.id > after[1]
                            ),
                        )
                    )
                rows = conn.execute(query).all()
                for row in rows:
                    if admit is None or admit(row.url):
                        chosen.append(row.id)
                        if len(chosen) == limit:
                            break
                scanned += len(rows)
                if len(rows) < _PAGE:
                    break
                after = (rows[-1].next_attempt_at, rows[-1].id)
        if not chosen:
            return []
        with self._engine.begin() as conn:
            leased = (
                conn.execute(
                    update(callbacks)
                    .where(
                        callbacks.c.id.in_(chosen),
                        callbacks.c.state == DeliveryState.PENDING.value,
                        callbacks.c.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=now + lease_seconds)
                    .returning(callbacks.c.id)
                )
                .scalars()
                .all()
            )
            if not leased:
                return []
            rows = conn.execute(
                select(callbacks, tasks.c.user_id)
                .select_from(callbacks.outerjoin(tasks, tasks.c.task_id == callbacks.c.task_id))
                .where(callbacks.c.id.in_(leased))
                .order_by(callbacks.c.id)
            ).all()
        return [_callback(r, r.user_id) for r in rows]

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
