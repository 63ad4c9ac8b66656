"""ExtParam ``ClientToken`` (idempotent task creation): every statement on ``client_tokens``.

A token is remembered per user for :data:`TTL` (24 hours) from the request that used it
first. :meth:`ClientTokens.reserve` runs in the transaction that inserts the task, so the
token and the task are stored together or not at all. Which of two requests with the same
token wins is decided by the table's primary key (user, token), in one statement:

* SQLite: the task's transaction holds the write lock from its start (``BEGIN
  IMMEDIATE``), so the second request runs after the first has committed and finds its row.
* PostgreSQL: ``INSERT ... ON CONFLICT`` makes the second request wait for the first
  transaction's outcome: if it committed, its row conflicts and its TaskID is read;
  if it rolled back, the second request inserts its own.

An expired row is taken over by the next request with its token (the same upsert), and
expired rows are deleted at most once an hour per process, inside a creating transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from openkvs.store.schema import client_tokens

TTL = 24 * 3600.0  # seconds a token is remembered
PURGE_INTERVAL = 3600.0  # seconds between deletions of expired tokens (per process)


class ClientTokens:
    """The statements, and when this process last deleted expired tokens."""

    def __init__(self) -> None:
        self._purge_due = 0.0

    def reserve(self, conn: Connection, user_id: int, token: str, task_id: str, now: float) -> str:
        """Give ``token`` to ``task_id`` unless the user used it in the last 24 hours;
        return the TaskID that holds it now (``task_id`` when it was free)."""
        if now >= self._purge_due:
            self._purge_due = now + PURGE_INTERVAL
            conn.execute(delete(client_tokens).where(client_tokens.c.created_at < now - TTL))
        insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(client_tokens).values(
            user_id=user_id, token=token, task_id=task_id, created_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[client_tokens.c.user_id, client_tokens.c.token],
            set_={"task_id": stmt.excluded.task_id, "created_at": stmt.excluded.created_at},
            where=client_tokens.c.created_at < now - TTL,  # only an expired token is taken
        ).returning(client_tokens.c.task_id)
        if conn.execute(stmt).first() is not None:
            return task_id
        held = conn.execute(
            select(client_tokens.c.task_id).where(
                client_tokens.c.user_id == user_id, client_tokens.c.token == token
            )
        ).scalar_one()
        return str(held)
