"""Users and their access keys: every statement on these tables."""

from __future__ import annotations

import secrets
import time

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from openkvs.model import User
from openkvs.store.schema import access_keys, users

_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _new_access_key_id() -> str:
    return "AK" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(18))


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def ensure_user(self, name: str) -> User:
        """The user called ``name``, created if it does not exist yet."""
        with self._engine.begin() as conn:
            row = conn.execute(select(users.c.id, users.c.name).where(users.c.name == name)).first()
            if row is None:
                try:
                    result = conn.execute(users.insert().values(name=name, created_at=time.time()))
                except IntegrityError:  # created meanwhile by another process
                    row = conn.execute(
                        select(users.c.id, users.c.name).where(users.c.name == name)
                    ).one()
                else:
                    assert result.inserted_primary_key is not None
                    return User(id=int(result.inserted_primary_key[0]), name=name)
        return User(id=row.id, name=row.name)

    def create_key(self, user: User) -> tuple[str, str]:
        """A new (AccessKeyId, SecretAccessKey) pair for ``user``."""
        key_id = _new_access_key_id()
        secret = secrets.token_urlsafe(30)
        with self._engine.begin() as conn:
            conn.execute(
                access_keys.insert().values(
                    access_key_id=key_id, secret=secret, user_id=user.id, created_at=time.time()
                )
            )
        return key_id, secret

    def lookup_key(self, access_key_id: str) -> tuple[str, User] | None:
        """(secret, user) of an access key, or None when it does not exist."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(access_keys.c.secret, users.c.id, users.c.name)
                .join(users, users.c.id == access_keys.c.user_id)
                .where(access_keys.c.access_key_id == access_key_id)
            ).first()
        if row is None:
            return None
        return row.secret, User(id=row.id, name=row.name)

    def list_keys(self) -> list[tuple[str, str]]:
        """(user name, access key id) of every key."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(users.c.name, access_keys.c.access_key_id)
                .join(users, users.c.id == access_keys.c.user_id)
                .order_by(users.c.name, access_keys.c.created_at)
            ).all()
        return [(r.name, r.access_key_id) for r in rows]
