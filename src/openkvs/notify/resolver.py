"""Looking host names up for callbacks: once at task creation (bounded), once per connection.

The system resolver (``getaddrinfo``) has no timeout of its own, so the creation-time look-up
runs in a small thread pool and is given up after a bound: the name is then accepted and
checked again when the callback is sent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from collections.abc import Awaitable, Callable, Sequence
from ipaddress import ip_address
from typing import Any

from openkvs.notify.policy import IPAddress

#: Seconds task creation waits for a callback host's addresses.
CREATION_LOOKUP_SECONDS = 2.0

#: ``resolve(host, port)``: every address of ``host``; raises ``OSError`` when there is none.
AsyncResolve = Callable[[str, int], Awaitable[list[IPAddress]]]

_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="cb-lookup")


def _addresses(infos: Sequence[tuple[Any, ...]]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for info in infos:
        # An IPv6 link-local answer may carry a zone ("fe80::1%eth0"): keep the address.
        address = ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def lookup(host: str) -> list[IPAddress]:
    """Every address of ``host`` (blocking); raises ``OSError`` when it does not resolve."""
    return _addresses(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM))


def resolve_bounded(host: str, timeout: float = CREATION_LOOKUP_SECONDS) -> list[IPAddress] | None:
    """The addresses of ``host``, or None when the look-up failed or took over ``timeout``."""
    future = _pool.submit(lookup, host)
    try:
        return future.result(timeout)
    except (concurrent.futures.TimeoutError, OSError, UnicodeError, ValueError):
        return None


async def system_resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host`` through the event loop's ``getaddrinfo`` (in a thread)."""
    loop = asyncio.get_running_loop()
    return _addresses(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
