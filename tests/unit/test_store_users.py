"""Users and access keys with sealed secrets, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url

from openkvs.store.schema import access_keys, users
from openkvs.store.secrets import Sealer, SecretsError, is_sealed
from openkvs.store.users import UserStore, sealed_secrets_exist

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


@pytest.fixture
def store(engine: Engine) -> UserStore:
    return UserStore(engine, Sealer(KEY))


def _raw_bytes(engine: Engine, db_url: str) -> bytes:
    """Everything the database holds, as an attacker copying it would read it: the SQLite
    file and its WAL byte for byte, or every PostgreSQL row of both tables as text."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        wal = path.with_name(path.name + "-wal")
        return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    with engine.connect() as conn:
        rows = list(conn.execute(text("SELECT u::text FROM users u")).scalars())
        rows += conn.execute(text("SELECT k::text FROM access_keys k")).scalars()
    return "\n".join(rows).encode("utf-8")


def test_a_copy_of_the_database_reveals_no_secret(
    store: UserStore, engine: Engine, db_url: str
) -> None:
    alice = store.ensure_user("alice")
    key_id, secret = store.create_key(alice)
    hook = store.webhook_secret(alice.id)
    raw = _raw_bytes(engine, db_url)
    assert key_id.encode() in raw and b"alice" in raw  # the right bytes were read
    assert secret.encode() not in raw
    assert hook.encode() not in raw
    assert hook.removeprefix("whsec_").encode() not in raw
    assert base64.b64decode(hook.removeprefix("whsec_")) not in raw
    with engine.connect() as conn:
        assert is_sealed(conn.execute(select(access_keys.c.secret)).scalar_one())
        assert is_sealed(conn.execute(select(users.c.webhook_secret)).scalar_one())


def test_lookup_opens_with_the_key_and_fails_clearly_with_another(
    store: UserStore, engine: Engine
) -> None:
    alice = store.ensure_user("alice")
    key_id, secret = store.create_key(alice)
    assert store.lookup_key(key_id) == (secret, alice)
    assert store.lookup_key("AKNOSUCHKEY000000000") is None
    store.check_data_key()

    wrong = UserStore(engine, Sealer(OTHER_KEY))
    with pytest.raises(SecretsError, match="access_key secret does not open"):
        wrong.lookup_key(key_id)
    with pytest.raises(SecretsError, match="webhook secret does not open"):
        wrong.webhook_secret(alice.id)
    with pytest.raises(SecretsError):
        wrong.check_data_key()


def test_webhook_secret_is_standard_webhooks_text_stable_and_per_user(store: UserStore) -> None:
    alice, bob = store.ensure_user("alice"), store.ensure_user("bob")
    secret = store.webhook_secret(alice.id)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert store.webhook_secret(alice.id) == secret
    assert store.ensure_user("alice") == alice and store.webhook_secret(alice.id) == secret
    assert store.webhook_secret(bob.id) != secret
    with pytest.raises(LookupError):
        store.webhook_secret(alice.id + bob.id + 100)


def test_revoked_keys_are_refused_and_listed(store: UserStore) -> None:
    alice = store.ensure_user("alice")
    first, _ = store.create_key(alice)
    second, second_secret = store.create_key(alice)
    before = time.time()
    revoked_at = store.revoke_key(first)
    assert revoked_at is not None and revoked_at >= before
    assert store.lookup_key(first) is None
    assert store.lookup_key(second) == (second_secret, alice)
    assert store.revoke_key(first) == revoked_at  # again: unchanged
    assert store.revoke_key("AKNOSUCHKEY000000000") is None
    listed = {k.access_key_id: k for k in store.list_keys()}
    assert listed[first].revoked_at == revoked_at and listed[first].user == "alice"
    assert listed[second].revoked_at is None


def _legacy_rows(engine: Engine) -> int:
    """Rows as a version before sealing wrote them: plain secrets, no webhook secret."""
    with engine.begin() as conn:
        old = conn.execute(users.insert().values(name="old", created_at=1.0))
        user_id = int(old.inserted_primary_key[0])  # type: ignore[index]
        conn.execute(
            users.insert().values(name="plainhook", created_at=1.0, webhook_secret="whsec_cGxhaW4=")
        )
        conn.execute(
            access_keys.insert().values(
                access_key_id="AKLEGACY000000000001",
                secret="legacy-plain-secret",
                user_id=user_id,
                created_at=1.0,
            )
        )
    return user_id


def test_legacy_plain_rows_are_resealed(store: UserStore, engine: Engine, db_url: str) -> None:
    user_id = _legacy_rows(engine)
    assert not sealed_secrets_exist(engine)
    assert store.lookup_key("AKLEGACY000000000001") is not None  # readable before resealing
    assert store.seal_legacy() == 2
    assert store.seal_legacy() == 0  # idempotent
    assert sealed_secrets_exist(engine)
    assert b"legacy-plain-secret" not in _raw_bytes(engine, db_url)
    found = store.lookup_key("AKLEGACY000000000001")
    assert found is not None and found[0] == "legacy-plain-secret" and found[1].id == user_id
    plainhook = store.find_user("plainhook")
    assert plainhook is not None and store.webhook_secret(plainhook.id) == "whsec_cGxhaW4="
    with engine.connect() as conn:
        stored = conn.execute(select(users.c.webhook_secret).where(users.c.id == user_id))
        assert stored.scalar() is None  # a user without one gets it on first ask
    first = store.webhook_secret(user_id)
    assert first.startswith("whsec_") and store.webhook_secret(user_id) == first


def test_first_asks_at_once_agree_on_one_webhook_secret(store: UserStore, engine: Engine) -> None:
    user_id = _legacy_rows(engine)
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def ask() -> None:
        try:
            start.wait()
            results.append(UserStore(engine, Sealer(KEY)).webhook_secret(user_id))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 6 and len(set(results)) == 1


def test_users_created_at_once_are_one_user(engine: Engine) -> None:
    found: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def create() -> None:
        try:
            start.wait()
            found.append(UserStore(engine, Sealer(KEY)).ensure_user("carol").id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(found) == 6 and len(set(found)) == 1


def test_callback_style_is_off_by_default_and_switched_per_user(store: UserStore) -> None:
    from openkvs.model import CallbackStyle

    alice, bob = store.ensure_user("alice"), store.ensure_user("bob")
    assert store.callback_style(alice.id) == CallbackStyle()
    assert store.set_callback_style(alice.id, lowercase=True) == CallbackStyle(lowercase=True)
    both = store.set_callback_style(alice.id, ks3_items=True)
    assert both == CallbackStyle(lowercase=True, ks3_items=True)
    assert store.set_callback_style(alice.id) == both  # nothing given: unchanged
    assert store.set_callback_style(alice.id, lowercase=False) == CallbackStyle(ks3_items=True)
    assert store.callback_style(bob.id) == CallbackStyle()
    with pytest.raises(LookupError):
        store.callback_style(9999)
