"""Prometheus metrics (``docs/operations.md`` "Metrics" lists them all).

Counters and histograms are written by the process where the event happens (an API process
answering a request, a worker finishing a task, the notifier delivering a callback). Every
process of one ``openkvs serve`` (several API processes: ``OPENKVS_API_PROCESSES``) or one
``openkvs worker`` writes them into one folder with prometheus_client's multiprocess mode,
so ``/metrics`` adds all of them up whichever process answers the scrape. What the database
knows (queue depth, the oldest queued task's age, worker heartbeats) is read from it at
scrape time, so an API process shows the whole fleet's queues.

:func:`enable` must run before any metric is touched; until then (unit tests, the CLI's
one-shot commands) every recording function does nothing.
"""

from __future__ import annotations

import hmac
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Task duration buckets, seconds: from a probe to a long transcode.
TASK_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
#: API latency buckets, seconds.
API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: ffmpeg speed buckets: media seconds made per wall second.
SPEED_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)
#: The folder's name prefix (under the system's temporary folder).
FOLDER_PREFIX = "openkvs-metrics-"


@dataclass
class _Metrics:
    folder: str
    api_requests: Any
    api_latency: Any
    tasks_created: Any
    tasks_finished: Any
    task_seconds: Any
    ffmpeg_speed: Any
    callbacks: Any


_lock = threading.Lock()
_metrics: _Metrics | None = None


def enable(folder: str | None = None) -> str:
    """Start recording, into ``folder`` (made fresh when None, under the system's temporary
    folder; removed by :func:`disable`). Child processes forked afterwards record into the
    same folder. Returns the folder. Calling it again returns the folder in use."""
    global _metrics
    with _lock:
        if _metrics is not None:
            return _metrics.folder
        folder = folder or tempfile.mkdtemp(prefix=FOLDER_PREFIX)
        os.makedirs(folder, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        from prometheus_client import Counter, Histogram, values

        # prometheus_client chose its value class when it was imported; choose again now
        # that the folder is known (metrics made from here on write into it).
        values.ValueClass = values.MultiProcessValue()
        registry = None  # the multiprocess collector reads the files; no default registry
        _metrics = _Metrics(
            folder=folder,
            api_requests=Counter(
                "openkvs_api_requests",
                "API requests answered, by action and result (ok, an ErrNum, or a gateway "
                "error code).",
                ["action", "result"],
                registry=registry,
            ),
            api_latency=Histogram(
                "openkvs_api_request_seconds",
                "Time to answer an API request, by action.",
                ["action"],
                buckets=API_BUCKETS,
                registry=registry,
            ),
            tasks_created=Counter(
                "openkvs_tasks_created",
                "Tasks queued, by type.",
                ["type"],
                registry=registry,
            ),
            tasks_finished=Counter(
                "openkvs_tasks_finished",
                "Tasks that ended, by type and result (succ, fail) and error code (0 on success).",
                ["type", "result", "errnum"],
                registry=registry,
            ),
            task_seconds=Histogram(
                "openkvs_task_duration_seconds",
                "Time from a task's start to its end on a worker, by type and result.",
                ["type", "result"],
                buckets=TASK_BUCKETS,
                registry=registry,
            ),
            ffmpeg_speed=Histogram(
                "openkvs_ffmpeg_speed",
                "Media seconds ffmpeg made per wall second, by task type.",
                ["type"],
                buckets=SPEED_BUCKETS,
                registry=registry,
            ),
            callbacks=Counter(
                "openkvs_callback_deliveries",
                "Callback delivery attempts, by kind (completion, progress) and outcome "
                "(delivered, retry, gave_up).",
                ["kind", "outcome"],
                registry=registry,
            ),
        )
        return folder


def disable(*, remove: bool = True) -> None:
    """Stop recording (tests); the folder is removed with ``remove``."""
    global _metrics
    with _lock:
        if _metrics is None:
            return
        folder = _metrics.folder
        _metrics = None
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        from prometheus_client import values

        values.ValueClass = values.MutexValue
    if remove:
        shutil.rmtree(folder, ignore_errors=True)


def enabled() -> bool:
    return _metrics is not None


def api_request(action: str, result: str, seconds: float) -> None:
    m = _metrics
    if m is None:
        return
    name = action or "-"
    m.api_requests.labels(name, result).inc()
    m.api_latency.labels(name).observe(seconds)


def task_created(task_type: str) -> None:
    if (m := _metrics) is not None:
        m.tasks_created.labels(task_type).inc()


def task_finished(task_type: str, errnum: int, seconds: float | None) -> None:
    if (m := _metrics) is None:
        return
    result = "succ" if errnum == 0 else "fail"
    m.tasks_finished.labels(task_type, result, str(errnum)).inc()
    if seconds is not None and seconds >= 0:
        m.task_seconds.labels(task_type, result).observe(seconds)


def ffmpeg_speed(task_type: str, media_seconds: float, wall_seconds: float) -> None:
    if (m := _metrics) is None or media_seconds <= 0 or wall_seconds <= 0:
        return
    m.ffmpeg_speed.labels(task_type).observe(media_seconds / wall_seconds)


def callback_attempt(kind: str, outcome: str) -> None:
    if (m := _metrics) is not None:
        m.callbacks.labels(kind, outcome).inc()


# -- scraping ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFacts:
    """One pipeline's queue at scrape time."""

    user: str
    pipeline: str
    queued: int
    oldest_age: float  # seconds the oldest queued task has waited (0 when none)
    running: int


@dataclass(frozen=True)
class WorkerFacts:
    """One registered worker at scrape time."""

    worker: str
    heartbeat_age: float  # seconds since its last heartbeat
    running: int


class _DatabaseCollector:
    """Gauges read from the database at each scrape."""

    def __init__(
        self,
        queues: Callable[[], Iterable[QueueFacts]],
        workers: Callable[[], Iterable[WorkerFacts]],
    ) -> None:
        self._queues = queues
        self._workers = workers

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        depth = GaugeMetricFamily(
            "openkvs_queue_depth", "Tasks waiting in a pipeline.", labels=["user", "pipeline"]
        )
        age = GaugeMetricFamily(
            "openkvs_queue_oldest_age_seconds",
            "How long the oldest waiting task of a pipeline has waited.",
            labels=["user", "pipeline"],
        )
        running = GaugeMetricFamily(
            "openkvs_tasks_running", "Tasks running, by pipeline.", labels=["user", "pipeline"]
        )
        for q in self._queues():
            depth.add_metric([q.user, q.pipeline], q.queued)
            age.add_metric([q.user, q.pipeline], q.oldest_age)
            running.add_metric([q.user, q.pipeline], q.running)
        heartbeat = GaugeMetricFamily(
            "openkvs_worker_heartbeat_age_seconds",
            "Seconds since each registered worker's last heartbeat.",
            labels=["worker"],
        )
        busy = GaugeMetricFamily(
            "openkvs_worker_running_tasks", "Tasks each worker runs.", labels=["worker"]
        )
        for w in self._workers():
            heartbeat.add_metric([w.worker], w.heartbeat_age)
            busy.add_metric([w.worker], w.running)
        return [depth, age, running, heartbeat, busy]


def exposition(
    queues: Callable[[], Iterable[QueueFacts]] | None = None,
    workers: Callable[[], Iterable[WorkerFacts]] | None = None,
) -> tuple[bytes, str]:
    """The text exposition of every process's metrics (and the database's gauges when
    ``queues``/``workers`` are given): ``(body, content type)``."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    m = _metrics
    if m is not None:
        MultiProcessCollector(registry, path=m.folder)
    if queues is not None or workers is not None:
        registry.register(_DatabaseCollector(queues or (lambda: ()), workers or (lambda: ())))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def authorised(header: str, token: str) -> bool:
    """Whether an ``Authorization`` header carries the bearer ``token`` (any, when none is
    set)."""
    return not token or hmac.compare_digest(header.encode(), f"Bearer {token}".encode())


def serve(port: int, token: str = "", host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """``/metrics`` of this process's folder on ``port`` (``openkvs worker``, which has no
    API port), in a daemon thread; ``shutdown()`` stops it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            if not authorised(self.headers.get("Authorization", ""), token):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Bearer realm="metrics"')
                self.end_headers()
                return
            body, content_type = exposition()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def process_exited(pid: int) -> None:
    """Tell the multiprocess files that ``pid`` ended (its live gauges go away)."""
    m = _metrics
    if m is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, m.folder)
