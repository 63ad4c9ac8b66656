"""Presets: every statement on the ``presets`` table."""

from __future__ import annotations

import json

from sqlalchemy import Engine, Row, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError

from openkvs.model import Preset
from openkvs.store.schema import presets


class DuplicatePreset(Exception):
    """A preset with that name already exists for the user."""


def _preset(row: Row) -> Preset:
    return Preset(
        name=row.name,
        preset_type=row.preset_type,
        description=row.description,
        param=json.loads(row.param),
        kshd=row.kshd,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# Built once (CreateTask reads a preset on every call): building the statement and its
# cache key each time costs more than running it.
_GET = select(presets).where(
    presets.c.user_id == bindparam("user_id"), presets.c.name == bindparam("name")
)


class PresetStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, user_id: int, preset: Preset) -> None:
        """Raises :class:`DuplicatePreset` when the name is taken."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    presets.insert().values(
                        user_id=user_id,
                        name=preset.name,
                        preset_type=preset.preset_type,
                        description=preset.description,
                        param=json.dumps(preset.param, ensure_ascii=False),
                        kshd=preset.kshd,
                        created_at=preset.created_at,
                        updated_at=preset.updated_at,
                    )
                )
        except IntegrityError as exc:
            raise DuplicatePreset(preset.name) from exc

    def replace(self, user_id: int, preset: Preset) -> bool:
        """Replace description, Param and Kshd; False when there is no such preset."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(presets)
                .where(presets.c.user_id == user_id, presets.c.name == preset.name)
                .values(
                    description=preset.description,
                    param=json.dumps(preset.param, ensure_ascii=False),
                    kshd=preset.kshd,
                    updated_at=preset.updated_at,
                )
            ).rowcount
        return done == 1

    def delete(self, user_id: int, name: str) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(
                delete(presets).where(presets.c.user_id == user_id, presets.c.name == name)
            ).rowcount
        return done == 1

    def get(self, user_id: int, name: str) -> Preset | None:
        with self._engine.connect() as conn:
            row = conn.execute(_GET, {"user_id": user_id, "name": name}).first()
        return None if row is None else _preset(row)

    def find(
        self, user_id: int, *, types: list[str] | None = None, names: list[str] | None = None
    ) -> list[Preset]:
        """The user's presets, newest first, optionally only of ``types`` / ``names``."""
        query = select(presets).where(presets.c.user_id == user_id)
        if types:
            query = query.where(presets.c.preset_type.in_(types))
        if names:
            query = query.where(presets.c.name.in_(names))
        query = query.order_by(presets.c.created_at.desc(), presets.c.id.desc())
        with self._engine.connect() as conn:
            return [_preset(r) for r in conn.execute(query)]
