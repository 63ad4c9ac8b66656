"""The HTTP sender without sockets: it connects only to checked addresses and keeps the name.

A recording network backend stands in for the network: it notes where a connection goes,
what is written and the TLS server name, and answers with a canned response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from ipaddress import ip_address, ip_network

import httpcore

from openkvs.notify.policy import AddressPolicy, IPAddress
from openkvs.notify.sender import HttpSender, SendResult

DEFAULT = AddressPolicy()
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


class Stream(httpcore.AsyncNetworkStream):
    def __init__(self, backend: Recorder) -> None:
        self._backend = backend
        self._answer = [backend.answer]

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._answer.pop(0) if self._answer else b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._backend.written += buffer

    async def aclose(self) -> None:
        return None

    async def start_tls(
        self, ssl_context: object, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        self._backend.tls_names.append(server_hostname)
        return self


class Recorder(httpcore.AsyncNetworkBackend):
    def __init__(self, answer: bytes = OK) -> None:
        self.answer = answer
        self.connects: list[tuple[str, int]] = []
        self.tls_names: list[str | None] = []
        self.written = b""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        return Stream(self)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _resolver(answers: dict[str, list[str]]) -> object:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in answers:
            raise OSError(f"{host} does not resolve")
        return [ip_address(a) for a in answers[host]]

    return resolve


def _send(
    url: str,
    answers: dict[str, list[str]],
    policy: AddressPolicy = DEFAULT,
    backend: Recorder | None = None,
) -> tuple[SendResult, Recorder]:
    recorder = backend or Recorder()
    sender = HttpSender(
        policy,
        timeout=5,
        resolve=_resolver(answers),  # type: ignore[arg-type]
        network_backend=recorder,
    )

    async def run() -> SendResult:
        try:
            return await sender.send(url, b'{"a":1}', {"webhook-id": "msg_1"})
        finally:
            await sender.aclose()

    return asyncio.run(run()), recorder


def test_connects_to_the_checked_address_and_keeps_the_name() -> None:
    result, net = _send(
        "https://hooks.example.com:8443/cb?x=1", {"hooks.example.com": ["93.184.216.34"]}
    )
    assert result == SendResult(200)
    assert net.connects == [("93.184.216.34", 8443)]
    assert net.tls_names == ["hooks.example.com"]
    head = net.written.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("POST /cb?x=1 HTTP/1.1\r\n")
    assert "Host: hooks.example.com:8443" in head
    assert "webhook-id: msg_1" in head and "Content-Type: application/json" in head
    assert net.written.endswith(b'{"a":1}')


def test_a_name_that_now_resolves_to_a_refused_address_is_not_connected() -> None:
    """Accepted at creation (it resolved to a public address then), the name resolves to a
    loopback or metadata address at delivery (DNS rebinding): no connection is made."""
    for answers in (["127.0.0.1"], ["93.184.216.34", "169.254.169.254"], ["::ffff:10.0.0.1"]):
        result, net = _send("http://rebind.example.com/cb", {"rebind.example.com": answers})
        assert result.http_status is None and result.error.startswith("refused:"), result
        assert not result.final  # the name may point elsewhere later: tried again
        assert net.connects == []


def test_allowed_ranges_are_connected() -> None:
    loopback = AddressPolicy((ip_network("127.0.0.0/8"),))
    result, net = _send("http://inside.example/cb", {"inside.example": ["127.0.0.2"]}, loopback)
    assert result.delivered and net.connects == [("127.0.0.2", 80)]
    result, net = _send("http://127.0.0.1:9000/cb", {}, loopback)
    assert result.delivered and net.connects == [("127.0.0.1", 9000)]
    assert b"Host: 127.0.0.1:9000\r\n" in net.written


def test_unusable_urls_fail_for_good_without_a_connection() -> None:
    for url in ("http://x.example/\r\nInjected: 1", "ftp://x.example/", "http://u:p@x.example/"):
        result, net = _send(url, {"x.example": ["93.184.216.34"]})
        assert result.final and result.http_status is None and net.connects == []


def test_failures_are_results_not_exceptions() -> None:
    result, _ = _send("http://nowhere.example/", {})
    assert result.http_status is None and "does not resolve" in result.error
    answer = b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy"
    result, _ = _send(
        "http://a.example/", {"a.example": ["93.184.216.34"]}, backend=Recorder(answer)
    )
    assert result == SendResult(503, "busy")
    result, _ = _send(
        "http://a.example/", {"a.example": ["93.184.216.34"]}, backend=Recorder(b"junk\r\n\r\n")
    )
    assert result.http_status is None and result.error
