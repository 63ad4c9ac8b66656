"""API call counters (GetInterfaceNumber): every statement on ``api_calls``.

Counting a call is an addition in memory, not a database write: writing each call would
take the database's write lock on every request. The sums are written (one upsert per user,
action and period) every ``flush_seconds`` by a background thread that the first count
starts, before every read of the counters, and by :meth:`CallCounter.close` at shutdown. A
crash loses at most the counts of the last interval (one second by default), and the
counts another process has not written yet appear within one interval.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from openkvs.store.outage import OutageWatch
from openkvs.store.schema import api_calls

log = logging.getLogger(__name__)

PERIOD = 300  # seconds per stored counter
FLUSH_SECONDS = 1.0  # how long counts stay in memory at most (while the process lives)

_Key = tuple[int, str, int]  # user id, action, period start


class CallCounter:
    def __init__(self, engine: Engine, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._engine = engine
        dialect = engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._flush_seconds = flush_seconds
        self._pending: Counter[_Key] = Counter()
        self._lock = threading.Lock()  # guards _pending and _thread
        # One flush at a time: a read that flushes first also waits for a flush that
        # another thread has taken the counts for but not committed yet.
        self._flushing = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self, user_id: int, action: str, now: float) -> None:
        """Add one call of ``action`` to the current 5-minute counter."""
        period = int(now) // PERIOD * PERIOD
        with self._lock:
            self._pending[(user_id, action, period)] += 1
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(
                    target=self._flush_loop, name="call-counter", daemon=True
                )
                self._thread.start()

    def _flush_loop(self) -> None:
        database = OutageWatch("call_counter")  # an outage: one warning, counts kept
        while not self._closed.wait(self._flush_seconds):
            writes = bool(self._pending)  # else flush() does not reach the database
            try:
                self.flush()
            except Exception as exc:
                if not database.failed(exc):
                    log.exception("call_counts_flush_failed")
            else:
                if writes:
                    database.ok()

    def flush(self) -> None:
        """Write the counts kept in memory. On a database error they are kept for the next
        flush and the error is raised."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, Counter()
            if not pending:
                return
            stmt = self._insert(api_calls)
            stmt = stmt.on_conflict_do_update(
                index_elements=["user_id", "action", "period_start"],
                set_={"count": api_calls.c.count + stmt.excluded.count},
            )
            rows = [
                {"user_id": user_id, "action": action, "period_start": period, "count": n}
                for (user_id, action, period), n in sorted(pending.items())
            ]
            try:
                with self._engine.begin() as conn:
                    conn.execute(stmt, rows)
            except BaseException:
                with self._lock:
                    self._pending.update(pending)
                raise

    def close(self) -> None:
        """Stop the background flushes and write what is left (at shutdown); a database
        error is logged, and those counts are lost."""
        self._closed.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()
        try:
            self.flush()
        except Exception:
            log.exception("call_counts_flush_failed")

    def between(self, user_id: int, start: int, end: int) -> list[tuple[int, str, int]]:
        """(period start, action, count) of the periods that start in [start, end), the
        counts of this process included up to now."""
        self.flush()
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
