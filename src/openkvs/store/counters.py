"""API call counters (GetInterfaceNumber): every statement on ``api_calls``."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from openkvs.store.schema import api_calls

PERIOD = 300  # seconds per stored counter


class CallCounter:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialect = engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def count(self, user_id: int, action: str, now: float) -> None:
        """Add one call of ``action`` to the current 5-minute counter."""
        period = int(now) // PERIOD * PERIOD
        stmt = self._insert(api_calls).values(
            user_id=user_id, action=action, period_start=period, count=1
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "action", "period_start"],
            set_={"count": api_calls.c.count + 1},
        )
        with self._engine.begin() as conn:
            conn.execute(stmt)

    def between(self, user_id: int, start: int, end: int) -> list[tuple[int, str, int]]:
        """(period start, action, count) of the periods that start in [start, end)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(api_calls.c.period_start, api_calls.c.action, api_calls.c.count)
                .where(
                    api_calls.c.user_id == user_id,
                    api_calls.c.period_start >= start,
                    api_calls.c.period_start < end,
                )
                .order_by(api_calls.c.period_start)
            ).all()
        return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]
