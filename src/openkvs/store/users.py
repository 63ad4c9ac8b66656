"""Users and their access keys: every statement on these tables."""

from __future__ import annotations

import base64
import secrets
import time

from sqlalchemy import ColumnElement, Engine, select
from sqlalchemy.exc import IntegrityError

from openkvs.model import AccessKey, CallbackStyle, User
from openkvs.store.schema import access_keys, users
from openkvs.store.secrets import SEALED_PREFIX, Sealer

#: Purposes bound to sealed values (associated data): a value sealed for one cannot be
#: opened as the other.
ACCESS_KEY_PURPOSE = "access_key"
WEBHOOK_PURPOSE = "webhook"

_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _new_access_key_id() -> str:
    return "AK" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(18))


def _new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class UserStore:
    """Users and access keys. Secrets are stored sealed with ``sealer`` (the data key)."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self._engine = engine
        self._sealer = sealer

    def ensure_user(self, name: str) -> User:
        """The user called ``name``, created (with a webhook secret) if it does not exist."""
        with self._engine.begin() as conn:
            row = conn.execute(select(users.c.id, users.c.name).where(users.c.name == name)).first()
            if row is None:
                try:
                    # A savepoint: on PostgreSQL a failed insert would abort the transaction.
                    with conn.begin_nested():
                        result = conn.execute(
                            users.insert().values(
                                name=name,
                                created_at=time.time(),
                                webhook_secret=self._sealer.seal(
                                    _new_webhook_secret(), WEBHOOK_PURPOSE
                                ),
                            )
                        )
                except IntegrityError:  # created meanwhile by another process
                    row = conn.execute(
                        select(users.c.id, users.c.name).where(users.c.name == name)
                    ).one()
                else:
                    assert result.inserted_primary_key is not None
                    return User(id=int(result.inserted_primary_key[0]), name=name)
        return User(id=row.id, name=row.name)

    def find_user(self, name: str) -> User | None:
        """The user called ``name``, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(users.c.id, users.c.name).where(users.c.name == name)).first()
        return None if row is None else User(id=row.id, name=row.name)

    def webhook_secret(self, user_id: int) -> str:
        """The user's Standard Webhooks signing secret (``whsec_...``). A user created before
        webhook secrets existed gets one now; concurrent first asks agree on one secret.
        Raises ``LookupError`` for an unknown user and ``SecretsError`` when the stored
        secret does not open with the data key."""
        stored = self._stored_webhook_secret(user_id)
        if stored is None:
            sealed = self._sealer.seal(_new_webhook_secret(), WEBHOOK_PURPOSE)
            with self._engine.begin() as conn:
                # Only the first writer sets it; everybody then reads the one stored.
                conn.execute(
                    users.update()
                    .where(users.c.id == user_id, users.c.webhook_secret.is_(None))
                    .values(webhook_secret=sealed)
                )
            stored = self._stored_webhook_secret(user_id)
            assert stored is not None
        return self._sealer.open(stored, WEBHOOK_PURPOSE)

    def _stored_webhook_secret(self, user_id: int) -> str | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(users.c.webhook_secret).where(users.c.id == user_id)).first()
        if row is None:
            raise LookupError(f"no user with id {user_id}")
        stored: str | None = row.webhook_secret
        return stored

    def callback_style(self, user_id: int) -> CallbackStyle:
        """The user's legacy completion-callback variants (both off by default). Raises
        ``LookupError`` for an unknown user."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(users.c.callback_style, users.c.ks3_items).where(users.c.id == user_id)
            ).first()
        if row is None:
            raise LookupError(f"no user with id {user_id}")
        return CallbackStyle(
            lowercase=row.callback_style == "lowercase", ks3_items=bool(row.ks3_items)
        )

    def set_callback_style(
        self, user_id: int, *, lowercase: bool | None = None, ks3_items: bool | None = None
    ) -> CallbackStyle:
        """Switch the variants given (None: unchanged); returns the user's style now. It
        applies to tasks created from now on. Raises ``LookupError`` for an unknown user."""
        values: dict[str, object] = {}
        if lowercase is not None:
            values["callback_style"] = "lowercase" if lowercase else ""
        if ks3_items is not None:
            values["ks3_items"] = 1 if ks3_items else 0
        if values:
            with self._engine.begin() as conn:
                conn.execute(users.update().where(users.c.id == user_id).values(**values))
        return self.callback_style(user_id)

    def is_admin(self, user_id: int) -> bool:
        """Whether the console shows this user every user's data (False for no such user)."""
        with self._engine.connect() as conn:
            value = conn.execute(select(users.c.admin).where(users.c.id == user_id)).scalar()
        return bool(value)

    def set_admin(self, user_id: int, admin: bool) -> None:
        """Switch the user's console admin flag. Raises ``LookupError`` for an unknown user."""
        with self._engine.begin() as conn:
            done = conn.execute(
                users.update().where(users.c.id == user_id).values(admin=1 if admin else 0)
            ).rowcount
        if not done:
            raise LookupError(f"no user with id {user_id}")

    def users_by_id(self) -> dict[int, str]:
        """Every user's name by id (the console's admin views name each row's user)."""
        with self._engine.connect() as conn:
            return {r.id: r.name for r in conn.execute(select(users.c.id, users.c.name))}

    def create_key(self, user: User) -> tuple[str, str]:
        """A new (AccessKeyId, SecretAccessKey) pair for ``user``; the secret is stored sealed."""
        key_id = _new_access_key_id()
        secret = secrets.token_urlsafe(30)
        sealed = self._sealer.seal(secret, ACCESS_KEY_PURPOSE)
        with self._engine.begin() as conn:
            conn.execute(
                access_keys.insert().values(
                    access_key_id=key_id, secret=sealed, user_id=user.id, created_at=time.time()
                )
            )
        return key_id, secret

    def lookup_key(self, access_key_id: str) -> tuple[str, User] | None:
        """(secret, user) of an access key, or None when it does not exist or was revoked.
        Raises ``SecretsError`` when the secret does not open with the data key."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(access_keys.c.secret, access_keys.c.revoked_at, users.c.id, users.c.name)
                .join(users, users.c.id == access_keys.c.user_id)
                .where(access_keys.c.access_key_id == access_key_id)
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        return self._sealer.open(row.secret, ACCESS_KEY_PURPOSE), User(id=row.id, name=row.name)

    def revoke_key(self, access_key_id: str) -> float | None:
        """Revoke an access key: requests signed with it are refused from now on. Returns
        when it was revoked (the first time, for a key already revoked), or None when no
        such key exists."""
        with self._engine.begin() as conn:
            conn.execute(
                access_keys.update()
                .where(
                    access_keys.c.access_key_id == access_key_id,
                    access_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=time.time())
            )
            revoked_at = conn.execute(
                select(access_keys.c.revoked_at).where(access_keys.c.access_key_id == access_key_id)
            ).scalar()
        return None if revoked_at is None else float(revoked_at)

    def list_keys(self) -> list[AccessKey]:
        """Every access key, by user name then age (revoked ones included)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(
                    users.c.name,
                    access_keys.c.access_key_id,
                    access_keys.c.created_at,
                    access_keys.c.revoked_at,
                )
                .join(users, users.c.id == access_keys.c.user_id)
                .order_by(users.c.name, access_keys.c.created_at)
            ).all()
        return [
            AccessKey(
                access_key_id=r.access_key_id,
                user=r.name,
                created_at=r.created_at,
                revoked_at=r.revoked_at,
            )
            for r in rows
        ]

    def check_data_key(self) -> None:
        """Raise ``SecretsError`` unless the data key opens the stored secrets (one sealed
        access-key secret and one sealed webhook secret are tried): a wrong key is
        reported at start-up rather than on the first request."""
        key_secret, hook_secret = _sample_sealed(self._engine)
        if key_secret is not None:
            self._sealer.open(key_secret, ACCESS_KEY_PURPOSE)
        if hook_secret is not None:
            self._sealer.open(hook_secret, WEBHOOK_PURPOSE)

    def seal_legacy(self) -> int:
        """Seal secrets an older version stored in plain text; returns how many. Idempotent
        and safe while other processes do the same (a row is replaced only if it still holds
        the plain value read). On SQLite the plain bytes are also wiped from the file and
        its WAL (secure delete, then a truncating checkpoint) where no reader holds them;
        earlier copies and backups keep them, of course."""
        with self._engine.connect() as conn:
            plain_keys = conn.execute(
                select(access_keys.c.access_key_id, access_keys.c.secret).where(
                    ~_sealed(access_keys.c.secret)
                )
            ).all()
            plain_hooks = conn.execute(
                select(users.c.id, users.c.webhook_secret).where(
                    users.c.webhook_secret.is_not(None), ~_sealed(users.c.webhook_secret)
                )
            ).all()
        if not plain_keys and not plain_hooks:
            return 0
        sealed = 0
        sqlite = self._engine.dialect.name == "sqlite"
        with self._engine.begin() as conn:
            if sqlite:  # overwrite the old values' bytes instead of leaving them as free space
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            for key_id, plain in plain_keys:
                result = conn.execute(
                    access_keys.update()
                    .where(access_keys.c.access_key_id == key_id, access_keys.c.secret == plain)
                    .values(secret=self._sealer.seal(plain, ACCESS_KEY_PURPOSE))
                )
                sealed += result.rowcount
            for user_id, plain in plain_hooks:
                result = conn.execute(
                    users.update()
                    .where(users.c.id == user_id, users.c.webhook_secret == plain)
                    .values(webhook_secret=self._sealer.seal(plain, WEBHOOK_PURPOSE))
                )
                sealed += result.rowcount
            if sqlite:  # back to the default for this pooled connection
                conn.exec_driver_sql("PRAGMA secure_delete=OFF")
        if sqlite:
            _truncate_wal(self._engine)
        return sealed


def _truncate_wal(engine: Engine) -> None:
    """Copy the WAL into the database file and empty it, so that older page versions
    (with plain secrets) leave the WAL. Best effort: a concurrent reader keeps it."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()


def _sealed(column: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether a stored secret is sealed (``v1:...``) rather than a legacy plain value."""
    return column.startswith(SEALED_PREFIX, autoescape=True)


def _sample_sealed(engine: Engine) -> tuple[str | None, str | None]:
    """One sealed access-key secret and one sealed webhook secret, where there are any."""
    with engine.connect() as conn:
        key_secret = conn.execute(
            select(access_keys.c.secret).where(_sealed(access_keys.c.secret)).limit(1)
        ).scalar()
        hook_secret = conn.execute(
            select(users.c.webhook_secret).where(_sealed(users.c.webhook_secret)).limit(1)
        ).scalar()
    return key_secret, hook_secret


def sealed_secrets_exist(engine: Engine) -> bool:
    """Whether the database holds secrets sealed with a data key (which must then be
    supplied: a new key would not open them)."""
    return _sample_sealed(engine) != (None, None)
