"""The request log: one ``api_request`` line for every HTTP request the app answers.

:class:`RequestLog` wraps the ASGI app. It gives each request its id (the ``RequestId`` of
gateway errors, returned in ``X-KSC-REQUEST-ID`` on every answer), lets the route code note
what it learnt on the request's :class:`RequestFacts` (action, user, ``ErrNum`` or gateway
error code), and logs once the answer is sent, whatever the outcome. A route that raises
is answered here with the gateway's 500 ``InternalError`` (``responses.from_exception``
logs its traceback)::

    api_request request_id=… method=POST action=CreateTask user=alice status=200 errnum=0
    latency_ms=3.2

Requests that never reach the app are not in this log: bytes the HTTP parser refuses
(uvicorn answers 400 and logs a warning) and connections closed because their headers did
not arrive in time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openkvs import metrics
from openkvs.api import responses
from openkvs.errors import ApiError, GatewayError

log = logging.getLogger(__name__)

#: Where a request's facts live in its ASGI scope.
SCOPE_KEY = "openkvs.request"
REQUEST_ID_HEADER = "X-KSC-REQUEST-ID"
#: Requests not counted by ``openkvs_api_requests_total`` (probes and scrapes).
UNCOUNTED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass
class RequestFacts:
    """What the log line of one request says; the route code fills it in as it learns."""

    request_id: str
    action: str = ""  # "" until the action is known
    user: str = ""  # "" until the signature named a user
    errnum: int | None = None  # the business answer's ErrNum (0 for success)
    error: str = ""  # the gateway error's Code (InternalError for an unexpected failure)

    def result(self, status: int) -> str:
        """The ``result`` label of ``openkvs_api_requests_total``: ``ok``, the ErrNum, the
        gateway error's Code, or the HTTP status when neither is known."""
        if self.errnum == 0:
            return "ok"
        if self.errnum is not None:
            return str(self.errnum)
        return self.error or str(status)

    def answered(self, exc: BaseException | None) -> None:
        """Note the outcome: ``None`` for success, else the exception that was answered."""
        if exc is None:
            self.errnum = 0
        elif isinstance(exc, ApiError):
            self.errnum = exc.code
        elif isinstance(exc, GatewayError):
            self.error = exc.code
        else:
            self.error = "InternalError"


def facts_of(scope: MutableMapping[str, Any]) -> RequestFacts:
    """The facts of the request (created when the app runs without :class:`RequestLog`)."""
    facts = scope.get(SCOPE_KEY)
    if not isinstance(facts, RequestFacts):
        facts = scope[SCOPE_KEY] = RequestFacts(new_request_id())
    return facts


class RequestLog:
    """ASGI middleware: request id, ``X-KSC-REQUEST-ID`` header, one ``api_request`` line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        facts = facts_of(scope)
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers[REQUEST_ID_HEADER] = facts.request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status:  # the answer has begun: nothing better can be sent
                facts.answered(exc)
                raise
            # A route that raised: the gateway's 500 InternalError JSON, never a bare page.
            facts.answered(exc)
            await responses.from_exception(exc, facts.request_id)(scope, receive, send_with_id)
        finally:
            fields: dict[str, Any] = {
                "request_id": facts.request_id,
                "method": scope.get("method", ""),
            }
            if facts.action:
                fields["action"] = facts.action
            if facts.user:
                fields["user"] = facts.user
            fields["status"] = status
            if facts.errnum is not None:
                fields["errnum"] = facts.errnum
            if facts.error:
                fields["error"] = facts.error
            seconds = time.perf_counter() - started
            fields["latency_ms"] = round(seconds * 1000, 1)
            if scope.get("path") not in UNCOUNTED_PATHS:
                metrics.api_request(facts.action, facts.result(status), seconds)
            log.info("api_request", extra=fields)
