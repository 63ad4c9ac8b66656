"""``/healthz``, ``/readyz`` and ``/metrics`` of a real ``openkvs serve`` with two API
processes: the counters move as tasks run, whichever process answers the scrape, and the
text parses with prometheus_client's own parser."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.conftest import FAST_ENV, Deployment, deploy
from tests.support.fleet import WorkerProcess
from tests.support.media import make_audio
from tests.support.moto_s3 import MotoS3, moto_s3, unique_prefix
from tests.support.receiver import CallbackReceiver
from tests.support.server import ServerProcess, cli, create_keys, free_port
from tests.support.tcpproxy import TcpProxy

__all__ = ["moto_s3"]  # the fixture, imported for the tests below

TOKEN = "scrape-token-for-tests"
ENV = {"OPENKVS_API_PROCESSES": "2", "OPENKVS_METRICS_TOKEN": TOKEN}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy(tmp_path_factory.mktemp("metrics") / "data", ENV)


def _samples(server_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape (a new connection each time: either process may answer)."""
    with httpx.Client(timeout=10) as http:
        answer = http.get(f"{server_url}/metrics", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        value
        for (found, got), value in samples.items()
        if found == name and set(labels.items()) <= set(got)
    )


def test_health_answers_without_a_signature(served: Deployment) -> None:
    with httpx.Client(timeout=10) as http:
        health = http.get(f"{served.server.url}/healthz")
        ready = http.get(f"{served.server.url}/readyz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "storage": "ok", "ffmpeg": "ok"},
    }


def test_metrics_ask_for_the_token(served: Deployment) -> None:
    with httpx.Client(timeout=10) as http:
        bare = http.get(f"{served.server.url}/metrics")
        wrong = http.get(f"{served.server.url}/metrics", headers={"Authorization": "Bearer x"})
    assert bare.status_code == 401 and wrong.status_code == 401
    assert bare.headers["www-authenticate"].startswith("Bearer")


def test_counters_move_as_tasks_run(served: Deployment, tmp_path: Path) -> None:
    url = served.server.url
    before = _samples(url)
    source = served.upload(make_audio(tmp_path, "m", fmt="mp3", seconds=1), "in/m.mp3")
    with CallbackReceiver() as receiver:
        task_id = served.create_wave(source, "out/m.json", CbUrl=receiver.url)
        assert served.wait_task(task_id)["TaskStatus"] == "succ"
        receiver.wait_for(1)
    bad = served.client.create_task(
        Preset="no-such-preset",
        SrcInfo=[{"path": source}],
        DstBucket="media",
        DstObjectKey="x.mp4",
    )
    assert bad["ErrNum"] == 1005
    deadline = time.monotonic() + 20  # the delivery is recorded just after it is answered
    while True:
        # Several scrapes: with two API processes either may answer; both add up all.
        scrapes = [_samples(url) for _ in range(4)]
        after = scrapes[-1]
        delivered = _value(
            after, "openkvs_callback_deliveries_total", kind="completion", outcome="delivered"
        )
        if (
            delivered
            > _value(
                before, "openkvs_callback_deliveries_total", kind="completion", outcome="delivered"
            )
            or time.monotonic() > deadline
        ):
            break
        time.sleep(0.2)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("openkvs_tasks_created_total", type="audiowave") == 1
    assert moved("openkvs_tasks_finished_total", type="audiowave", result="succ") == 1
    assert moved("openkvs_task_duration_seconds_count", type="audiowave", result="succ") == 1
    assert moved("openkvs_api_requests_total", action="CreateWaveTask", result="ok") == 1
    assert moved("openkvs_api_requests_total", action="CreateTask", result="1005") == 1
    assert moved("openkvs_api_request_seconds_count", action="CreateTask") == 1
    assert moved("openkvs_callback_deliveries_total", kind="completion", outcome="delivered") == 1
    # The same totals whichever process answered.
    for scrape in scrapes:
        assert _value(scrape, "openkvs_tasks_created_total", type="audiowave") == _value(
            after, "openkvs_tasks_created_total", type="audiowave"
        )


def test_queue_gauges_show_a_waiting_task(served: Deployment, tmp_path: Path) -> None:
    reply = served.client.update_pipeline(PipelineName="usual", State="Paused")
    assert reply["ErrNum"] == 0, reply
    try:
        source = served.upload(make_audio(tmp_path, "q", fmt="mp3", seconds=1), "in/q.mp3")
        task_id = served.create_wave(source, "out/q.json")
        time.sleep(0.3)
        samples = _samples(served.server.url)
        assert _value(samples, "openkvs_queue_depth", pipeline="usual", user="default") == 1
        age = _value(samples, "openkvs_queue_oldest_age_seconds", pipeline="usual")
        assert age > 0
    finally:
        served.client.update_pipeline(PipelineName="usual", State="Active")
    assert served.wait_task(task_id)["TaskStatus"] == "succ"
    samples = _samples(served.server.url)
    assert _value(samples, "openkvs_queue_depth", pipeline="usual") == 0


def test_readyz_names_what_is_down(tmp_path: Path, moto_s3: MotoS3) -> None:
    """The S3 storage cut off (a proxy in front of it stops answering): 503 naming it."""
    data = tmp_path / "data"
    data.mkdir()
    create_keys(data)
    with TcpProxy(("127.0.0.1", int(moto_s3.url.rsplit(":", 1)[1]))) as proxy:
        env = {
            **moto_s3.env(
                bucket_prefix=unique_prefix(), endpoint_url=f"http://127.0.0.1:{proxy.port}"
            ),
            "OPENKVS_S3_TIMEOUT": "1",
            "OPENKVS_WORKERS": "1",
        }
        with ServerProcess(data, env) as server, httpx.Client(timeout=30) as http:
            assert http.get(f"{server.url}/readyz").status_code == 200
            proxy.cut(blackhole=False)
            ready = http.get(f"{server.url}/readyz")
            health = http.get(f"{server.url}/healthz")
            proxy.restore()
    assert health.status_code == 200
    assert ready.status_code == 503, ready.text
    checks = ready.json()["checks"]
    assert checks["database"] == "ok" and checks["ffmpeg"] == "ok"
    assert checks["storage"] != "ok"


def test_a_worker_serves_its_metrics_on_its_own_port(tmp_path: Path) -> None:
    """``openkvs worker`` has no API port: OPENKVS_METRICS_PORT serves its /metrics."""
    data = tmp_path / "data"
    data.mkdir()
    create_keys(data)
    assert cli(data, "bucket", "create", "media").returncode == 0
    port = free_port()
    env = {**FAST_ENV, "OPENKVS_METRICS_PORT": str(port), "OPENKVS_METRICS_TOKEN": TOKEN}
    source = make_audio(tmp_path, "w", fmt="mp3", seconds=1)
    assert cli(data, "cp", str(source), "/media/in/w.mp3").returncode == 0
    with WorkerProcess(data, env, name="metrics-worker"):
        submitted = cli(
            data, "task", "submit", "--preset", "wave", "--src", "/media/in/w.mp3",
            "--dst", "/media/out/w.json", "--points", "10", "--wait", env=env,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        with httpx.Client(timeout=10) as http:
            assert http.get(f"http://127.0.0.1:{port}/metrics").status_code == 401
        samples = _samples(f"http://127.0.0.1:{port}")
    assert _value(samples, "openkvs_tasks_finished_total", type="audiowave", result="succ") == 1
