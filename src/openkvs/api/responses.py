"""Exceptions become responses here, and only here (spec §1.5)."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from starlette.responses import Response

from openkvs.errors import ApiError, DatabaseUnavailable, GatewayError, InternalError
from openkvs.store.outage import OutageWatch

log = logging.getLogger(__name__)

SERVER_HEADER = "ksyun-open-platform"

#: The API's view of the database: one warning when requests start failing for want of it.
DATABASE = OutageWatch("api")


def _json(status: int, body: dict[str, Any], request_id: str) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        status_code=status,
        headers={"Server": SERVER_HEADER, "X-KSC-REQUEST-ID": request_id},
        media_type="application/json; charset=UTF-8",
    )


def new_request_id() -> str:
    return str(uuid.uuid4())


def success(result: dict[str, Any], request_id: str) -> Response:
    """A business success: HTTP 200, ``ErrNum`` 0 and the action's members beside it."""
    return _json(200, {"ErrNum": 0, "ErrMsg": "success", **result}, request_id)


def answerable(exc: BaseException) -> BaseException:
    """``exc`` as it is answered: a database outage (``store/outage.py``) becomes
    :class:`DatabaseUnavailable` (503, logged once per outage, without a traceback); every
    other exception is itself."""
    if isinstance(exc, ApiError | GatewayError) or not DATABASE.failed(exc):
        return exc
    return DatabaseUnavailable()


def from_exception(exc: BaseException, request_id: str) -> Response:
    """The response for an exception: 200 + ErrNum for business errors, the gateway
    status + ``Error`` for gateway errors (503 with ``Retry-After`` when the database is
    unreachable), and a logged 500 ``InternalError`` otherwise."""
    if isinstance(exc, ApiError):
        return _json(200, {"ErrNum": exc.code, "ErrMsg": exc.message}, request_id)
    exc = answerable(exc)
    if not isinstance(exc, GatewayError):
        log.exception("request_failed", extra={"request_id": request_id}, exc_info=exc)
        exc = InternalError()
    body = {
        "RequestId": request_id,
        "Error": {"Type": exc.type, "Code": exc.code, "Message": exc.message},
    }
    response = _json(exc.status, body, request_id)
    if isinstance(exc, DatabaseUnavailable):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response
