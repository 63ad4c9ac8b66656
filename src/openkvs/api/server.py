"""Running the API with uvicorn, so that a signal stops openkvs as a whole, with the
connection limits of ``api/connections.py`` (header-read timeout, connection cap)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from openkvs.api import responses
from openkvs.api.connections import guarded_protocol, http_protocol
from openkvs.api.requestlog import RequestLog, facts_of
from openkvs.config import Settings
from openkvs.errors import ServiceUnavailable


class ApiServer(uvicorn.Server):
    """uvicorn's server, except that after a SIGINT/SIGTERM shutdown it returns instead of
    raising the signal again: the caller still has to stop the workers and the notifier
    (release or finish running tasks) before the process exits."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


async def _busy(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer on a connection over ``OPENKVS_MAX_CONNECTIONS``: 503, then close."""
    facts = facts_of(scope)
    exc = ServiceUnavailable()
    facts.answered(exc)
    response = responses.from_exception(exc, facts.request_id)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


def make_server(
    app: Starlette, host: str, port: int, settings: Settings | None = None
) -> ApiServer:
    """uvicorn serving ``app`` with the limits of ``settings`` (the defaults when None):
    ``header_timeout`` and ``max_connections``. uvicorn's own loggers write through the
    process's log handler (``openkvs.logs``), so their lines carry the same timestamps."""
    settings = settings or Settings()
    protocol = guarded_protocol(
        http_protocol("auto"),
        header_timeout=settings.header_timeout,
        max_connections=settings.max_connections,
        busy_app=RequestLog(_busy),
    )
    return ApiServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            http=protocol,
            ws="none",  # no WebSocket routes; an upgrade request is answered as plain HTTP
            log_level="warning",
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
        )
    )
