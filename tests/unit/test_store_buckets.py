"""Bucket owners and grants on SQLite and PostgreSQL: who may read and write a bucket."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine

from openkvs.store.buckets import Access, BucketStore, Grant, UnknownBucket
from openkvs.store.secrets import Sealer
from openkvs.store.users import UserStore

SEALER = Sealer(bytes(32))


@pytest.fixture
def store(engine: Engine) -> BucketStore:
    return BucketStore(engine)


@pytest.fixture
def people(engine: Engine) -> dict[str, int]:
    users = UserStore(engine, SEALER)
    return {name: users.ensure_user(name).id for name in ("alice", "bob", "carol")}


def test_owner_and_grants_decide_access(store: BucketStore, people: dict[str, int]) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    assert store.create("media", alice).owner_id == alice
    assert store.access(alice, "media") is Access.OWNER
    assert store.access(bob, "media") is Access.NONE
    assert store.access(alice, "elsewhere") is Access.NONE  # no owner record: nobody

    store.grant("media", bob, Grant.READ)
    read = store.access(bob, "media")
    assert read is Access.READ and read.can_read and not read.can_write
    assert store.access(carol, "media") is Access.NONE  # a grant is per user

    store.grant("media", bob, Grant.READWRITE)  # replaces the read grant
    both = store.access(bob, "media")
    assert both is Access.READWRITE and both.can_read and both.can_write
    assert not Access.NONE.can_read and Access.OWNER.can_write

    assert store.revoke("media", bob) is True
    assert store.access(bob, "media") is Access.NONE
    assert store.revoke("media", bob) is False


def test_a_bucket_keeps_its_first_owner(store: BucketStore, people: dict[str, int]) -> None:
    first = store.create("media", people["alice"])
    again = store.create("media", people["bob"])
    assert (first.owner, again.owner) == ("alice", "alice")
    assert again.owner_id == people["alice"]
    assert store.create("media", people["alice"]).created_at == first.created_at


def test_records_list_owners_and_grants(store: BucketStore, people: dict[str, int]) -> None:
    store.create("zeta", people["bob"])
    store.create("alpha", people["alice"])
    store.grant("alpha", people["carol"], Grant.READ)
    store.grant("alpha", people["bob"], Grant.READWRITE)
    records = store.records()
    assert [(b.name, b.owner) for b in records] == [("alpha", "alice"), ("zeta", "bob")]
    assert records[0].grants == {"bob": Grant.READWRITE, "carol": Grant.READ}
    assert records[1].grants == {}
    found = store.get("alpha")
    assert found is not None and found.grants == records[0].grants
    assert store.get("missing") is None


def test_grants_need_an_owned_bucket(store: BucketStore, people: dict[str, int]) -> None:
    with pytest.raises(UnknownBucket):
        store.grant("nobody-owns-it", people["bob"], Grant.READ)
    with pytest.raises(UnknownBucket):
        store.set_owner("nobody-owns-it", people["bob"])


def test_a_new_owner_loses_the_grant_it_had(store: BucketStore, people: dict[str, int]) -> None:
    store.create("media", people["alice"])
    store.grant("media", people["bob"], Grant.READ)
    store.set_owner("media", people["bob"])
    assert store.access(people["bob"], "media") is Access.OWNER
    assert store.access(people["alice"], "media") is Access.NONE
    found = store.get("media")
    assert found is not None and found.grants == {}


def test_adoption_is_idempotent(store: BucketStore, people: dict[str, int]) -> None:
    store.create("owned", people["bob"])
    assert store.unowned(["owned", "old-1", "old-2", "old-1"]) == ["old-1", "old-2"]
    assert store.adopt(["owned", "old-1", "old-2"], people["alice"]) == ["old-1", "old-2"]
    assert store.adopt(["owned", "old-1", "old-2"], people["alice"]) == []
    assert store.unowned(["owned", "old-1", "old-2"]) == []
    assert store.access(people["bob"], "owned") is Access.OWNER  # adoption takes nothing
    assert store.access(people["alice"], "old-2") is Access.OWNER
    assert store.adopt([], people["alice"]) == []


def test_concurrent_adoption_gives_each_bucket_one_owner(
    engine: Engine, people: dict[str, int]
) -> None:
    names = [f"legacy-{n}" for n in range(20)]
    start = threading.Barrier(4)
    adopted: list[list[str]] = []
    errors: list[BaseException] = []

    def adopt(owner: int) -> None:
        try:
            start.wait()
            adopted.append(BucketStore(engine).adopt(names, owner))
        except BaseException as exc:  # reported below
            errors.append(exc)

    owners = [people["alice"], people["bob"], people["carol"], people["alice"]]
    threads = [threading.Thread(target=adopt, args=(o,)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    every = sorted(n for found in adopted for n in found)
    assert every == sorted(names)  # each adopted exactly once
    records = BucketStore(engine).records()
    assert sorted(b.name for b in records) == sorted(names)
