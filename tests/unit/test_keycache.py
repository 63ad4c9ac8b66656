"""The access-key cache: reused for its TTL, unknown keys never remembered."""

from __future__ import annotations

from openkvs.api.keycache import KeyCache
from openkvs.model import User

ALICE = User(id=1, name="alice")


class Keys:
    """A lookup that counts its calls; ``table`` can change like the database."""

    def __init__(self) -> None:
        self.table: dict[str, tuple[str, User]] = {"AK1": ("secret", ALICE)}
        self.calls = 0

    def __call__(self, access_key_id: str) -> tuple[str, User] | None:
        self.calls += 1
        return self.table.get(access_key_id)


def test_a_found_key_is_reused_until_its_ttl_runs_out() -> None:
    keys, now = Keys(), [100.0]
    cache = KeyCache(keys, ttl=2.0, clock=lambda: now[0])
    assert cache.get("AK1") == ("secret", ALICE)
    now[0] += 1.9
    del keys.table["AK1"]  # revoked
    assert cache.get("AK1") == ("secret", ALICE) and keys.calls == 1  # within the TTL
    now[0] += 0.2
    assert cache.get("AK1") is None and keys.calls == 2  # refused once the TTL ran out


def test_unknown_keys_are_not_remembered() -> None:
    keys, now = Keys(), [100.0]
    cache = KeyCache(keys, ttl=60.0, clock=lambda: now[0])
    assert cache.get("AK2") is None
    keys.table["AK2"] = ("new", ALICE)  # created just after a failed attempt
    assert cache.get("AK2") == ("new", ALICE)


def test_a_ttl_of_zero_looks_up_every_time() -> None:
    keys = Keys()
    cache = KeyCache(keys, ttl=0)
    for _ in range(3):
        assert cache.get("AK1") == ("secret", ALICE)
    assert keys.calls == 3


def test_the_cache_is_bounded() -> None:
    keys, now = Keys(), [100.0]
    keys.table.update({f"K{n}": ("s", ALICE) for n in range(10)})
    cache = KeyCache(keys, ttl=60.0, clock=lambda: now[0], max_entries=4)
    for n in range(10):
        cache.get(f"K{n}")
    assert len(cache._entries) <= 4
