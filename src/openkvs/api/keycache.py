"""A short-lived memory of access-key lookups, so that a signed request does not query the
database (and open the sealed secret) every time.

A key found is reused for ``ttl`` seconds after it was read (``OPENKVS_KEY_CACHE_SECONDS``,
default 2): a key revoked with ``openkvs keys revoke`` is refused by a running ``serve``
within that time, not at once. Keys that were not found are not remembered, so a key
created a moment ago works at once. A lookup that fails (the database is unreachable) is not
remembered either: its exception reaches the caller, which answers 503 ``ServiceUnavailable``
(``api/responses.py``), never 403 as for an unknown key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from openkvs.model import User

Lookup = Callable[[str], tuple[str, User] | None]


class KeyCache:
    """``get(access_key_id)`` → (secret, user) or None, like the lookup it wraps."""

    def __init__(
        self,
        lookup: Lookup,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, tuple[str, User]]] = {}
        self._lock = threading.Lock()

    def get(self, access_key_id: str) -> tuple[str, User] | None:
        now = self._clock()
        entry = self._entries.get(access_key_id)
        if entry is not None and now < entry[0]:
            return entry[1]
        found = self._lookup(access_key_id)
        with self._lock:
            if found is None or self._ttl <= 0:
                self._entries.pop(access_key_id, None)
                return found
            if len(self._entries) >= self._max_entries:
                # Drop the entries that ran out; if all are fresh, start over (bounded).
                self._entries = {k: v for k, v in self._entries.items() if now < v[0]}
                if len(self._entries) >= self._max_entries:
                    self._entries.clear()
            self._entries[access_key_id] = (now + self._ttl, found)
        return found
