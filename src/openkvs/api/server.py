"""Running the API with uvicorn, so that a signal stops openkvs as a whole."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette


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


def make_server(app: Starlette, host: str, port: int) -> ApiServer:
    return ApiServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
        )
    )
