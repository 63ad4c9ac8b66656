"""Gateway limits against a real server: the body limit (and nothing read before the key is
known), the header-read timeout, the connection cap, and the request log."""

from __future__ import annotations

import json
import re
import select
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from tests.integration.conftest import Deployment, deploy

REGION = "cn-beijing-6"
HUNDRED_MB = 100 * 1024 * 1024
LIMIT = 256 * 1024
#: Generous bound for "eventually": what the tests wait at most, never what they expect.
PATIENCE = 60.0


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    env = {"OPENKVS_MAX_BODY_BYTES": str(LIMIT), "OPENKVS_HEADER_TIMEOUT": "1"}
    yield from deploy(tmp_path_factory.mktemp("limits"), env)


def _fresh_client() -> httpx.Client:
    """An HTTP client opening a new connection per request: the module's server closes
    idle kept-alive ones after one second, which races with their reuse."""
    return httpx.Client(
        trust_env=False, timeout=PATIENCE, limits=httpx.Limits(max_keepalive_connections=0)
    )


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _connect(kvs: Deployment) -> socket.socket:
    return socket.create_connection(("127.0.0.1", kvs.server.port), timeout=PATIENCE)


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP response (Content-Length framed) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return status, headers, body[:length]


def _stream(sock: socket.socket, total: int, *, chunked: bool) -> tuple[int, bool]:
    """Send up to ``total`` bytes of body (chunked or raw) until the server answers or
    closes; returns (bytes sent, whether an answer is waiting)."""
    piece = b"x" * 65536
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    sent = 0
    sock.settimeout(5)
    while sent < total:
        if select.select([sock], [], [], 0)[0]:
            return sent, True
        try:
            sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            return sent, bool(select.select([sock], [], [], 0)[0])
        sent += len(piece)
    return sent, bool(select.select([sock], [], [], 1)[0])


def _signed_header_claim(kvs: Deployment) -> str:
    """An Authorization header naming the test's real key, with a wrong signature."""
    day = datetime.now(UTC).strftime("%Y%m%d")
    return (
        f"AWS4-HMAC-SHA256 Credential={kvs.access_key}/{day}/{REGION}/kvs/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
    )


def _head(kvs: Deployment, extra: str) -> bytes:
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return (
        f"POST /?Action=CreateTask HTTP/1.1\r\nHost: 127.0.0.1:{kvs.server.port}\r\n"
        f"Content-Type: application/json\r\nX-Amz-Date: {amz_date}\r\n{extra}\r\n"
    ).encode()


def test_a_100_mb_body_is_refused_without_growing_the_server(limited: Deployment) -> None:
    """Anonymous and key-naming senders, with and without Content-Length: each is answered
    (413 or the authentication error) having made the server hold at most the limit."""
    pid = limited.server.pid
    before = _rss_kib(pid)
    claim = f"Authorization: {_signed_header_claim(limited)}\r\n"
    cases = [
        ("anonymous, Content-Length", f"Content-Length: {HUNDRED_MB}\r\n", False, 413),
        ("anonymous, chunked", "Transfer-Encoding: chunked\r\n", True, 400),
        ("known key, Content-Length", f"{claim}Content-Length: {HUNDRED_MB}\r\n", False, 413),
        ("known key, chunked", f"{claim}Transfer-Encoding: chunked\r\n", True, 413),
        ("unknown key, chunked", claim.replace(limited.access_key, "AKNOBODY") +
         "Transfer-Encoding: chunked\r\n", True, 403),
    ]  # fmt: skip
    for name, extra, chunked, status in cases:
        with _connect(limited) as sock:
            sock.sendall(_head(limited, extra))
            sent, answered = _stream(sock, HUNDRED_MB, chunked=chunked)
            assert sent < HUNDRED_MB // 4, f"{name}: the server kept reading ({sent} bytes)"
            assert answered, f"{name}: no answer after {sent} bytes"
            got, headers, body = _response(sock)
            assert got == status, f"{name}: {got} {body[:300]!r}"
            assert headers.get("connection") == "close", name
            error = json.loads(body)["Error"]
            assert error["Code"] in {
                "RequestEntityTooLarge",
                "MissingAuthenticationToken",
                "InvalidClientTokenId",
            }, name
    grown = _rss_kib(pid) - before
    assert grown < 10 * 1024, f"server RSS grew by {grown} KiB"


def test_small_bodies_under_the_limit_still_work(limited: Deployment) -> None:
    body = json.dumps({"Preset": "x" * (LIMIT // 2)}).encode()  # > 64 KiB: key looked up
    url = limited.presigned("POST", "Action=GetPresetDetail", body)
    with _fresh_client() as http:
        reply = http.post(url, content=body)
        assert reply.status_code == 200 and reply.json()["ErrNum"] == 1005, reply.text[:200]
        too_big = b"{" + b" " * LIMIT + b"}"
        reply = http.post(url, content=too_big)
        assert reply.status_code == 413, reply.text[:200]
        assert reply.json()["Error"]["Code"] == "RequestEntityTooLarge"


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _answered_afresh(kvs: Deployment) -> bool:
    """A signed GetPresetList on a new connection (a kept-alive one may be closed by the
    short header timeout just as it is reused) answers ErrNum 0."""
    url = kvs.presigned("GET", "Action=GetPresetList")
    with _fresh_client() as http:
        return bool(http.get(url).json()["ErrNum"] == 0)


def test_half_sent_requests_are_closed_and_others_answered(limited: Deployment) -> None:
    """200 connections that never finish their headers (and one that drips them) are
    closed by the server; a complete signed request meanwhile is answered."""
    socks = [_connect(limited) for _ in range(200)]
    try:
        for sock in socks:
            sock.sendall(b"POST /?Action=GetTaskList HTTP/1.1\r\nHost: x\r\n")
        assert _answered_afresh(limited)
        deadline = time.monotonic() + PATIENCE
        dripping = _connect(limited)
        socks.append(dripping)
        dripped = False
        for sock in socks:
            sock.settimeout(0.2)
        open_socks = list(socks)
        while open_socks and time.monotonic() < deadline:
            try:
                dripping.sendall(b"X")  # one header byte at a time
            except OSError:
                dripped = True
            open_socks = [s for s in open_socks if not _closed(s)]
        assert not open_socks, f"{len(open_socks)} connections still open"
        assert dripped or _closed(dripping)
        assert _answered_afresh(limited)
    finally:
        for sock in socks:
            sock.close()


def test_an_idle_kept_alive_connection_is_closed_too(limited: Deployment) -> None:
    url = limited.presigned("GET", "Action=GetPresetList")
    target = url.split(str(limited.server.port), 1)[1]
    with _connect(limited) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{limited.server.port}\r\n\r\n".encode()
        )
        status, headers, _ = _response(sock)
        assert status == 200 and headers.get("connection") != "close"
        sock.sendall(b"GET / HTTP/1.1\r\n")  # a second request, never finished
        sock.settimeout(PATIENCE)
        assert _closed(sock)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy(tmp_path_factory.mktemp("capped"), {"OPENKVS_MAX_CONNECTIONS": "10"})


def test_connections_over_the_cap_get_503(capped: Deployment) -> None:
    idle = [_connect(capped) for _ in range(10)]  # accepted first: the backlog is FIFO
    try:
        with _fresh_client() as http:
            url = capped.presigned("GET", "Action=GetPresetList")
            reply = http.get(url)
            assert reply.status_code == 503, reply.text
            assert reply.json()["Error"]["Code"] == "ServiceUnavailable"
            assert reply.headers["connection"] == "close"
            assert reply.headers["x-ksc-request-id"] == reply.json()["RequestId"]
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + PATIENCE
    while True:  # the server sees the closes; then requests are served again
        with _fresh_client() as http:
            status = http.get(url).status_code
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200


_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d ")


def _log_lines(kvs: Deployment, request_id: str) -> list[str]:
    deadline = time.monotonic() + PATIENCE
    while True:
        lines = [
            line
            for line in kvs.server.log_path.read_text(errors="replace").splitlines()
            if "api_request" in line and f"request_id={request_id}" in line
        ]
        if lines or time.monotonic() > deadline:
            return lines


def test_every_request_is_logged_once(limited: Deployment) -> None:
    def signed(action: str, body: bytes = b"") -> str:
        return limited.presigned("POST", f"Action={action}", body)

    with _fresh_client() as http:
        replies = {
            "success": http.post(signed("GetPresetList")),
            "business error": http.post(signed("GetPresetDetail")),
            "gateway error": http.post(f"{limited.server.url}/?Action=GetPresetList"),
            "too large": http.post(signed("GetPresetList"), content=b" " * (LIMIT + 1)),
            "elsewhere": http.get(f"{limited.server.url}/nothing/here"),
        }
    expected = {
        "success": ("action=GetPresetList", "user=default", "status=200", "errnum=0"),
        "business error": ("action=GetPresetDetail", "status=200", "errnum=1005"),
        "gateway error": ("status=400", "error=MissingAuthenticationToken"),
        "too large": ("status=413", "error=RequestEntityTooLarge"),
        "elsewhere": ("status=400", "error=InvalidAction"),
    }
    for name, reply in replies.items():
        request_id = reply.headers["x-ksc-request-id"]
        lines = _log_lines(limited, request_id)
        assert len(lines) == 1, f"{name}: {lines}"
        line = lines[0]
        assert _ISO.match(line), line
        for part in expected[name]:
            assert part in line.split(), f"{name}: {part} not in {line}"
        assert re.search(r" latency_ms=\d+(\.\d+)?$", line), line
