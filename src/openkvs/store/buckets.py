"""Bucket owners and grants: every statement on the ``buckets`` and ``bucket_grants`` tables.

A bucket belongs to one user, its owner. The owner may read sources from it and write
outputs into it; other users may only with a grant: ``read`` (sources, object URLs) or
``readwrite`` (outputs too). The folders themselves live in the object storage; this store
only says who may use them.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from openkvs.store.schema import bucket_grants, buckets, users

#: The user that owns buckets created without ``--user`` and buckets that existed before
#: owners did: the same user ``openkvs keys create`` makes without ``--user``.
DEFAULT_USER = "default"


class Grant(enum.StrEnum):
    """Access given to a user who does not own the bucket (the stored values)."""

    READ = "read"  # read sources and get object URLs; no outputs
    READWRITE = "readwrite"  # read sources and write outputs


class Access(enum.StrEnum):
    """What one user may do with one bucket."""

    NONE = "none"  # neither the owner nor granted (or the bucket has no owner record)
    READ = "read"  # a read grant
    READWRITE = "readwrite"  # a read-write grant
    OWNER = "owner"  # the owner: everything

    @property
    def can_read(self) -> bool:
        return self is not Access.NONE

    @property
    def can_write(self) -> bool:
        return self in (Access.READWRITE, Access.OWNER)


@dataclass(frozen=True)
class Bucket:
    """A bucket's owner record, with the users it was granted to (user name → grant)."""

    name: str
    owner_id: int
    owner: str
    created_at: float
    grants: dict[str, Grant]


class UnknownBucket(LookupError):
    """The bucket has no owner record."""


def _insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing``/``_do_update``: another
    process may be inserting the same key at the same moment."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database {conn.dialect.name}")  # pragma: no cover


# Built once (every task creation checks two buckets): building the statement and its
# cache key each time costs more than running it.
_ACCESS = (
    select(buckets.c.owner_id, bucket_grants.c.access)
    .select_from(buckets)
    .outerjoin(
        bucket_grants,
        (bucket_grants.c.bucket == buckets.c.name)
        & (bucket_grants.c.user_id == bindparam("user_id")),
    )
    .where(buckets.c.name == bindparam("name"))
)


class BucketStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, name: str, owner_id: int) -> Bucket:
        """Record ``name`` as owned by ``owner_id`` unless it already has an owner; returns
        the record as it now is: compare ``owner_id`` to know whether it was yours."""
        with self._engine.begin() as conn:
            conn.execute(
                _insert(conn, buckets)
                .values(name=name, owner_id=owner_id, created_at=time.time())
                .on_conflict_do_nothing()
            )
        found = self.get(name)
        assert found is not None
        return found

    def adopt(self, names: Iterable[str], owner_id: int) -> list[str]:
        """Give every bucket of ``names`` that has no owner record to ``owner_id``; returns
        the ones adopted now. Safe to run from several processes at once."""
        wanted = sorted(set(names))
        if not wanted:
            return []
        with self._engine.begin() as conn:
            known = set(
                conn.execute(select(buckets.c.name).where(buckets.c.name.in_(wanted))).scalars()
            )
            adopted = []
            now = time.time()
            for n in wanted:
                if n in known:
                    continue
                inserted = conn.execute(
                    _insert(conn, buckets)
                    .values(name=n, owner_id=owner_id, created_at=now)
                    .on_conflict_do_nothing()
                    .returning(buckets.c.name)
                ).first()
                if inserted is not None:  # else adopted meanwhile by another process
                    adopted.append(n)
        return adopted

    def unowned(self, names: Iterable[str]) -> list[str]:
        """The names among ``names`` that have no owner record."""
        wanted = sorted(set(names))
        if not wanted:
            return []
        with self._engine.connect() as conn:
            known = set(
                conn.execute(select(buckets.c.name).where(buckets.c.name.in_(wanted))).scalars()
            )
        return [n for n in wanted if n not in known]

    def set_owner(self, name: str, owner_id: int) -> None:
        """Give the bucket to another user; a grant the new owner had is dropped (owning
        includes it). :class:`UnknownBucket` when it has no owner record."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(buckets).where(buckets.c.name == name).values(owner_id=owner_id)
            ).rowcount
            if done != 1:
                raise UnknownBucket(name)
            conn.execute(
                delete(bucket_grants).where(
                    bucket_grants.c.bucket == name, bucket_grants.c.user_id == owner_id
                )
            )

    def grant(self, name: str, user_id: int, grant: Grant) -> None:
        """Give ``user_id`` ``grant`` on the bucket, replacing a grant it had.
        :class:`UnknownBucket` when the bucket has no owner record."""
        with self._engine.begin() as conn:
            if conn.execute(select(buckets.c.name).where(buckets.c.name == name)).first() is None:
                raise UnknownBucket(name)
            conn.execute(
                _insert(conn, bucket_grants)
                .values(bucket=name, user_id=user_id, access=grant.value, created_at=time.time())
                .on_conflict_do_update(
                    index_elements=[bucket_grants.c.bucket, bucket_grants.c.user_id],
                    set_={"access": grant.value},
                )
            )

    def revoke(self, name: str, user_id: int) -> bool:
        """Remove the user's grant on the bucket; False when there was none."""
        with self._engine.begin() as conn:
            done = conn.execute(
                delete(bucket_grants).where(
                    bucket_grants.c.bucket == name, bucket_grants.c.user_id == user_id
                )
            ).rowcount
        return bool(done)

    def access(self, user_id: int, name: str) -> Access:
        """What ``user_id`` may do with the bucket ``name`` (one query)."""
        with self._engine.connect() as conn:
            row = conn.execute(_ACCESS, {"user_id": user_id, "name": name}).first()
        if row is None:
            return Access.NONE
        if row.owner_id == user_id:
            return Access.OWNER
        if row.access is None:
            return Access.NONE
        return Access(row.access)

    def get(self, name: str) -> Bucket | None:
        found = self._records(name)
        return found[0] if found else None

    def records(self) -> list[Bucket]:
        """Every owner record, by name."""
        return self._records(None)

    def _records(self, name: str | None) -> list[Bucket]:
        owners = select(
            buckets.c.name, buckets.c.owner_id, buckets.c.created_at, users.c.name.label("owner")
        ).join(users, users.c.id == buckets.c.owner_id)
        granted = (
            select(bucket_grants.c.bucket, bucket_grants.c.access, users.c.name.label("user"))
            .join(users, users.c.id == bucket_grants.c.user_id)
            .order_by(users.c.name)
        )
        if name is not None:
            owners = owners.where(buckets.c.name == name)
            granted = granted.where(bucket_grants.c.bucket == name)
        with self._engine.connect() as conn:
            rows = conn.execute(owners.order_by(buckets.c.name)).all()
            grants: dict[str, dict[str, Grant]] = {}
            for g in conn.execute(granted):
                grants.setdefault(g.bucket, {})[g.user] = Grant(g.access)
        return [
            Bucket(
                name=r.name,
                owner_id=r.owner_id,
                owner=r.owner,
                created_at=r.created_at,
                grants=grants.get(r.name, {}),
            )
            for r in rows
        ]
