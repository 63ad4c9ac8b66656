"""The callback receiver test helper does what the integration tests rely on.

(It opens local sockets: it is a test of a test tool, kept next to the other unit tests.)
"""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest
from tests.support.receiver import CallbackReceiver, ReceiverTimeout


def _post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_records_every_request_in_order() -> None:
    with CallbackReceiver() as rx:
        assert rx.url == f"http://127.0.0.1:{rx.port}/callback"
        payload = {"TaskID": "t" * 40, "Status": 3, "Details": {"errnum": 0}}
        assert (
            _post(
                rx.port,
                "/callback?x=1",
                json.dumps(payload).encode(),
                {"Content-Type": "application/json", "X-Extra": "yes"},
            )
            == 200
        )
        assert _post(rx.port, "/other", b"not json") == 200

        first, second = rx.wait_for(2, timeout=5)

    assert first.method == "POST"
    assert first.path == "/callback?x=1"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-extra"] == "yes"
    assert ("X-Extra", "yes") in first.raw_headers
    assert json.loads(first.body) == payload
    assert first.json == payload
    assert first.status == 200
    assert second.path == "/other"
    assert second.body == b"not json"
    assert second.json is None
    assert first.time <= second.time


def test_scripted_statuses_then_last_one_repeats() -> None:
    with CallbackReceiver(statuses=[500, 500, 200]) as rx:
        got = [_post(rx.port, "/callback", b"{}") for _ in range(4)]
        assert got == [500, 500, 200, 200]
        assert [r.status for r in rx.requests] == [500, 500, 200, 200]

        rx.set_statuses([404])
        assert _post(rx.port, "/callback", b"{}") == 404


def test_wait_for_blocks_until_requests_arrive() -> None:
    with CallbackReceiver() as rx:
        timer = threading.Timer(0.2, _post, args=(rx.port, "/callback", b"{}"))
        timer.start()
        try:
            started = time.monotonic()
            (request,) = rx.wait_for(1, timeout=5)
            assert time.monotonic() - started >= 0.15
            assert request.json == {}
        finally:
            timer.join()


def test_wait_for_times_out_with_what_arrived() -> None:
    with CallbackReceiver() as rx:
        _post(rx.port, "/callback", b'{"a": 1}')
        with pytest.raises(ReceiverTimeout, match=r"expected 2 request\(s\) within 0.1 s, got 1"):
            rx.wait_for(2, timeout=0.1)


def test_assert_quiet() -> None:
    with CallbackReceiver() as rx:
        _post(rx.port, "/callback", b"{}")
        rx.assert_quiet(0.05)
        with pytest.raises(AssertionError):
            rx.assert_quiet(0.05, count=0)


def test_delay_holds_the_answer() -> None:
    with CallbackReceiver(delay=[0.3, 0.0]) as rx:
        started = time.monotonic()
        _post(rx.port, "/callback", b"{}")
        assert time.monotonic() - started >= 0.25
        started = time.monotonic()
        _post(rx.port, "/callback", b"{}")
        assert time.monotonic() - started < 0.25


def test_close_does_not_wait_for_an_idle_kept_alive_connection() -> None:
    rx = CallbackReceiver()
    with pytest.raises(RuntimeError):
        _ = rx.url
    rx.start()
    url = rx.url
    conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=5)
    try:
        conn.request("POST", "/callback", body=b"{}")
        conn.getresponse().read()  # HTTP/1.1: the server keeps the connection open
        started = time.monotonic()
        rx.close()
        assert time.monotonic() - started < 5
    finally:
        conn.close()
    rx.close()  # idempotent
    assert rx.url == url  # still readable for assertions after the block
    assert len(rx.requests) == 1
