"""Pipelines: every statement on the ``pipelines`` table."""

from __future__ import annotations

from sqlalchemy import Engine, Row, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from openkvs.model import Pipeline, PipelineState
from openkvs.store.queue import announce
from openkvs.store.schema import pipelines


def _pipeline(row: Row) -> Pipeline:
    return Pipeline(
        name=row.name,
        state=PipelineState(row.state),
        description=row.description,
        regular_start=row.regular_start,
        regular_duration=row.regular_duration,
        quota=row.quota,
    )


# Built once (every task creation reads its pipeline): building the statement and its
# cache key each time costs more than running it.
_GET = select(pipelines).where(
    pipelines.c.user_id == bindparam("user_id"), pipelines.c.name == bindparam("name")
)


class PipelineStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, user_id: int, name: str) -> Pipeline | None:
        with self._engine.connect() as conn:
            row = conn.execute(_GET, {"user_id": user_id, "name": name}).first()
        return None if row is None else _pipeline(row)

    def put(self, user_id: int, pipeline: Pipeline, now: float) -> None:
        """Create or replace the user's pipeline of that name. Idle workers of every
        process are told (a resumed or widened pipeline may start tasks): the new State,
        window and Quota apply from the next claim (``store/queue.py``)."""
        values = {
            "state": pipeline.state.value,
            "description": pipeline.description,
            "regular_start": pipeline.regular_start,
            "regular_duration": pipeline.regular_duration,
            "quota": pipeline.quota,
            "updated_at": now,
        }
        where = (pipelines.c.user_id == user_id, pipelines.c.name == pipeline.name)
        for _ in range(2):  # a concurrent first create: the second try updates
            with self._engine.begin() as conn:
                if conn.execute(update(pipelines).where(*where).values(**values)).rowcount:
                    announce(conn)
                    return
                try:
                    with conn.begin_nested():
                        conn.execute(
                            pipelines.insert().values(
                                user_id=user_id, name=pipeline.name, created_at=now, **values
                            )
                        )
                    announce(conn)
                    return
                except IntegrityError:
                    continue
