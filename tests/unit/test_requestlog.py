"""The request log (api/requestlog.py) and log timestamps (logs.py), in process."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from openkvs import logs
from openkvs.api.requestlog import RequestLog, facts_of
from openkvs.errors import ApiError, RequestEntityTooLarge


async def business(request: Request) -> Response:
    facts = facts_of(request.scope)
    facts.action, facts.user = "GetTaskList", "alice"
    facts.answered(ApiError(1001, "Limit"))
    return PlainTextResponse("ok")


async def gateway(request: Request) -> Response:
    facts_of(request.scope).answered(RequestEntityTooLarge())
    return PlainTextResponse("too large", status_code=413)


async def broken(request: Request) -> Response:
    raise RuntimeError("bug")


APP = Starlette(
    routes=[Route("/b", business), Route("/g", gateway), Route("/x", broken)],
    middleware=[Middleware(RequestLog)],
)


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "api_request"]


def test_one_line_per_request_with_its_facts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "openkvs.api.requestlog")

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=APP, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return [await client.get("/b"), await client.get("/g"), await client.get("/x")]

    replies = asyncio.run(send())
    records = _records(caplog)
    assert len(records) == 3
    ids = [r.headers["x-ksc-request-id"] for r in replies]
    assert [r.request_id for r in records] == ids and len(set(ids)) == 3
    business_line, gateway_line, broken_line = (vars(r) for r in records)
    assert business_line["action"] == "GetTaskList" and business_line["user"] == "alice"
    assert business_line["status"] == 200 and business_line["errnum"] == 1001
    assert gateway_line["status"] == 413 and gateway_line["error"] == "RequestEntityTooLarge"
    assert "action" not in gateway_line and "user" not in gateway_line
    assert broken_line["status"] == 500 and broken_line["error"] == "InternalError"
    assert replies[2].status_code == 500  # the gateway's JSON, not a bare page
    assert replies[2].json()["Error"]["Code"] == "InternalError"
    assert replies[2].json()["RequestId"] == ids[2]
    assert all(r.latency_ms >= 0 for r in records)


_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"


def test_log_times_carry_their_zone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "api_request", None, None)
    record.status = 200
    text = logs._Formatter(as_json=False).format(record)
    assert re.match(_ISO + r" INFO +api_request status=200$", text), text
    entry = json.loads(logs._Formatter(as_json=True).format(record))
    assert re.fullmatch(_ISO, entry["time"]) and entry["event"] == "api_request"
