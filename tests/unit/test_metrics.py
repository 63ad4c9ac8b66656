"""``openkvs.metrics``: nothing is recorded until enabled; the exposition parses; the
Grafana dashboard in docs/ names only metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from openkvs import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


def _families(tmp_path: Path) -> set[str]:
    metrics.enable(str(tmp_path / "m"))
    try:
        metrics.api_request("CreateTask", "ok", 0.01)
        metrics.task_created("avtrans")
        metrics.task_finished("avtrans", 0, 2.0)
        metrics.ffmpeg_speed("avtrans", 10.0, 2.0)
        metrics.callback_attempt("completion", "delivered")
        body, _ = metrics.exposition(
            lambda: [metrics.QueueFacts("u", "usual", 1, 3.0, 0)],
            lambda: [metrics.WorkerFacts("w1", 1.5, 2)],
        )
    finally:
        metrics.disable()
    names = set()
    for family in text_string_to_metric_families(body.decode()):
        names |= {sample.name for sample in family.samples}
    return names


def test_disabled_metrics_record_nothing(tmp_path: Path) -> None:
    assert not metrics.enabled()
    metrics.task_created("avtrans")  # no error, nothing kept
    body, _ = metrics.exposition()
    assert b"openkvs_tasks_created" not in body


def test_every_metric_shows_up(tmp_path: Path) -> None:
    names = _families(tmp_path)
    for expected in (
        "openkvs_api_requests_total",
        "openkvs_api_request_seconds_bucket",
        "openkvs_tasks_created_total",
        "openkvs_tasks_finished_total",
        "openkvs_task_duration_seconds_count",
        "openkvs_ffmpeg_speed_bucket",
        "openkvs_callback_deliveries_total",
        "openkvs_queue_depth",
        "openkvs_queue_oldest_age_seconds",
        "openkvs_tasks_running",
        "openkvs_worker_heartbeat_age_seconds",
        "openkvs_worker_running_tasks",
    ):
        assert expected in names, expected


def test_the_dashboard_names_only_existing_metrics(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"openkvs_[a-z_]+", expr)}
    assert used
    assert used <= _families(tmp_path), used - _families(tmp_path)


def test_bearer_token_check() -> None:
    assert metrics.authorised("", "")
    assert metrics.authorised("Bearer s3cret", "s3cret")
    assert not metrics.authorised("Bearer wrong", "s3cret")
    assert not metrics.authorised("", "s3cret")
