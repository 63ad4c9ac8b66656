"""Operations endpoints: ``/healthz`` (the process answers), ``/readyz`` (the database,
the object storage and ffmpeg answer) and ``/metrics`` (Prometheus, ``openkvs.metrics``).

None of them is signed: load balancers and scrapers do not sign. ``/metrics`` asks for
``Authorization: Bearer <OPENKVS_METRICS_TOKEN>`` when that setting is given. Each
readiness check runs in a thread with a time limit, so a hung database or storage makes
``/readyz`` answer 503 in time rather than hang.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from openkvs import metrics
from openkvs.engine import ffmpeg
from openkvs.service.context import Services
from openkvs.store import gauges

#: Seconds each readiness check may take.
CHECK_SECONDS = 5.0


def _check_ffmpeg() -> None:
    subprocess.run(
        [ffmpeg.FFMPEG, "-hide_banner", "-version"],
        check=True,
        capture_output=True,
        timeout=CHECK_SECONDS,
        stdin=subprocess.DEVNULL,
    )


async def _timed(check: Callable[[], Any]) -> str:
    """``"ok"`` or why the check failed (its error, or that it took too long)."""
    try:
        await asyncio.wait_for(run_in_threadpool(check), CHECK_SECONDS)
    except TimeoutError:
        return f"no answer within {CHECK_SECONDS:g} s"
    except Exception as exc:  # the reason is the answer
        return f"{type(exc).__name__}: {exc}"[:300]
    return "ok"


def ops_routes(services: Services) -> list[Route]:
    """The routes; put them before any catch-all route."""
    engine = services.database
    token = services.settings.metrics_token

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks: dict[str, Callable[[], Any]] = {
            "storage": services.storage.list_buckets,
            "ffmpeg": _check_ffmpeg,
        }
        if engine is not None:
            checks = {"database": lambda: gauges.ping(engine), **checks}
        results = await asyncio.gather(*(_timed(check) for check in checks.values()))
        answers = dict(zip(checks, results, strict=True))
        ready = all(result == "ok" for result in answers.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": answers},
            status_code=200 if ready else 503,
        )

    def scrape() -> tuple[bytes, str]:
        if engine is None:
            return metrics.exposition()
        now = time.time()
        return metrics.exposition(
            lambda: gauges.queue_facts(engine, now), lambda: gauges.worker_facts(engine, now)
        )

    async def metrics_page(request: Request) -> Response:
        if not metrics.authorised(request.headers.get("authorization", ""), token):
            return Response(
                "a bearer token is required\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                media_type="text/plain",
            )
        try:
            body, content_type = await run_in_threadpool(scrape)
        except Exception as exc:  # the database is down: what the processes counted still shows
            body, content_type = metrics.exposition()
            body += f"# database gauges unavailable: {type(exc).__name__}\n".encode()
        return Response(body, media_type=content_type)

    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_page, methods=["GET"]),
    ]
