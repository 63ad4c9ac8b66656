"""Sending one callback: a Protocol, the real HTTP sender and an in-memory fake.

The real sender speaks HTTP/1.1 through ``httpcore`` with a network backend that resolves
the host once, checks every address against the :class:`AddressPolicy` and connects only
to an address it checked; the ``Host`` header and TLS server name stay the URL's host name.
It never follows redirects and reads at most a few KiB of an answer. The total deadline of
an attempt is the notifier's (see ``notifier.py``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Protocol

import httpcore
import httpx

from openkvs.notify.policy import (
    AddressPolicy,
    AddressRefused,
    IPAddress,
    UnusableUrl,
    parse_callback_url,
)
from openkvs.notify.resolver import AsyncResolve, system_resolve

#: Bytes of an answer read at most (the rest is dropped with the connection).
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class SendResult:
    """The outcome of one POST: the HTTP status, or the error that prevented one.

    ``final``: the destination can never work (an unusable URL, e.g. one stored by an older
    version): the callback fails at once instead of being tried again.
    """

    http_status: int | None
    error: str = ""
    final: bool = False

    @property
    def delivered(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


class CallbackSender(Protocol):
    """POSTs one callback body with the given extra headers; never raises for a failed send
    (the notifier still treats any exception, and its deadline, as a failed attempt)."""

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult: ...

    async def aclose(self) -> None: ...


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows: resolves the host once, refuses the
    connection when any address is refused, then tries the checked addresses in order."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolve: AsyncResolve = system_resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolve
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses: list[IPAddress]
        try:
            addresses = [ip_address(host)]
        except ValueError:
            addresses = await self._resolve(host, port)
        self._policy.check_addresses(host, addresses)
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("callbacks go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class HttpSender:
    """POSTs JSON over HTTP/1.1 to checked addresses; reuses connections between callbacks.

    ``timeout`` bounds each network step (the notifier bounds the attempt as a whole);
    ``resolve`` and ``network_backend`` are replaceable for tests.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout: float,
        max_connections: int = 32,
        resolve: AsyncResolve = system_resolve,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._policy = policy
        self._timeout = timeout
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=max_connections,
            keepalive_expiry=30.0,
            network_backend=CheckedBackend(policy, resolve, network_backend),
        )

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        try:
            target = parse_callback_url(url)
            self._policy.check_target(target)
        except UnusableUrl as exc:
            return SendResult(None, f"refused: the URL {exc}", final=True)
        except AddressRefused as exc:
            return SendResult(None, f"refused: {exc}")
        request_headers = [
            (b"Host", target.host_header.encode("ascii")),
            (b"Content-Type", b"application/json"),
            (b"Content-Length", str(len(body)).encode("ascii")),
            (b"User-Agent", b"openkvs-callback"),
            *((k.encode("ascii"), v.encode("ascii")) for k, v in headers.items()),
        ]
        step = {"connect": self._timeout, "read": self._timeout, "write": self._timeout}
        try:
            async with self._pool.stream(
                "POST",
                httpcore.URL(
                    scheme=target.scheme.encode("ascii"),
                    host=target.host.encode("ascii"),
                    port=target.port,
                    target=target.target.encode("ascii"),
                ),
                headers=request_headers,
                content=body,
                extensions={"timeout": {**step, "pool": self._timeout}},
            ) as response:
                status = response.status
                answer = await _read_some(response)
        except AddressRefused as exc:
            return SendResult(None, f"refused: {exc}")
        except Exception as exc:  # any failure to send is a failed attempt, never more
            return SendResult(None, _describe(exc))
        ok = 200 <= status < 300
        return SendResult(status, "" if ok else answer[:200].decode("utf-8", "replace"))

    async def aclose(self) -> None:
        await self._pool.aclose()


async def _read_some(response: httpcore.Response) -> bytes:
    """Up to ``MAX_ANSWER_BYTES`` of the answer (reading it all lets the connection be kept)."""
    data = b""
    chunks = response.aiter_stream()
    try:
        async for chunk in chunks:
            data += chunk
            if len(data) >= MAX_ANSWER_BYTES:
                break
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    return data


def _describe(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"[:300]


@dataclass
class FakeSender:
    """Answers from a script of statuses (the last one repeats) and records every send.

    Sends to a URL in ``hanging`` never answer (the notifier's deadline ends them).
    """

    statuses: list[int] = field(default_factory=lambda: [200])
    hanging: frozenset[str] = frozenset()
    sent: list[tuple[str, bytes]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        self.sent.append((url, body))
        self.headers.append(dict(headers))
        if url in self.hanging:
            await asyncio.Event().wait()
        answered = len([u for u, _ in self.sent if u not in self.hanging])
        status = self.statuses[min(answered, len(self.statuses)) - 1]
        return SendResult(status)

    async def aclose(self) -> None:
        return None
