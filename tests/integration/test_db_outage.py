"""A PostgreSQL outage while tasks run: ``openkvs serve`` reaches PostgreSQL through a TCP
proxy that the test cuts for about ten seconds (every connection closed, new ones left
unanswered, as a dead network does) and then restores.

During the cut the API answers 503 ``ServiceUnavailable`` with ``Retry-After``. Afterwards
every task ends exactly once, successfully, with exactly one completion callback, and the
server logged the outage as warnings, without a traceback.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from tests.integration.conftest import BUCKET, FAST_ENV, Deployment
from tests.support.kvs_client import close_kvs_client, import_kscore, make_kvs_client
from tests.support.receiver import CallbackReceiver
from tests.support.server import ServerProcess, cli, create_keys
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.slow

TASKS = 6
CUT_SECONDS = 10.0


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy(("127.0.0.1", 5432)) as running:
        yield running


@pytest.fixture
def deployment(pg_url: str, proxy: TcpProxy, tmp_path: Path) -> Iterator[Deployment]:
    """``openkvs serve`` on PostgreSQL through ``proxy``, with a key and the bucket."""
    proxied = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    env = {
        **FAST_ENV,
        "OPENKVS_DATABASE_URL": proxied.render_as_string(hide_password=False),
        # Callback leases end soon after an attempt (its timeout + 30 s).
        "OPENKVS_CALLBACK_TIMEOUT": "3",
    }
    data_dir = tmp_path / "kvs"
    data_dir.mkdir()
    access_key, secret_key = create_keys(data_dir, env=env)
    assert cli(data_dir, "bucket", "create", BUCKET, env=env).returncode == 0
    source = tmp_path / "tone.m4a"  # ten minutes of a quiet tone: a second or two of work
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi",
         "-i", "sine=frequency=440:sample_rate=8000:duration=600", "-c:a", "aac", str(source)],
        check=True, timeout=120,
    )  # fmt: skip
    copied = cli(data_dir, "cp", str(source), f"/{BUCKET}/in/tone.m4a", env=env)
    assert copied.returncode == 0, copied.stderr
    with ServerProcess(data_dir, env) as server:
        client = make_kvs_client(server.url, access_key, secret_key)
        try:
            yield Deployment(server, data_dir, access_key, secret_key, client)
        finally:
            close_kvs_client(client)


def _raw_get(deployment: Deployment, task_id: str) -> tuple[int, Message, dict]:
    url = deployment.presigned("GET", f"Action=GetTaskByTaskID&Version=2017-01-01&TaskID={task_id}")
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, answer.headers, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read())


def _status(deployment: Deployment, task_id: str) -> str:
    return str(deployment.client.get_task_by_task_id(TaskID=task_id)["TaskInfo"]["TaskStatus"])


def test_tasks_survive_a_database_outage(deployment: Deployment, proxy: TcpProxy) -> None:
    with CallbackReceiver() as receiver:
        task_ids = [
            deployment.create_wave(
                f"/{BUCKET}/in/tone.m4a", f"out/{n}.json", points=50, CbUrl=receiver.url
            )
            for n in range(TASKS)
        ]
        deadline = time.monotonic() + 60
        while _status(deployment, task_ids[0]) == "init" and time.monotonic() < deadline:
            time.sleep(0.02)
        log_before = deployment.server.log_path.read_text(errors="replace")

        proxy.cut()
        cut_at = time.monotonic()
        status, headers, body = _raw_get(deployment, task_ids[0])
        assert status == 503, body
        assert headers.get("Retry-After") == "5"
        assert body["Error"]["Code"] == "ServiceUnavailable"
        assert body["Error"]["Type"] == "Receiver"
        kscore = import_kscore()
        with pytest.raises(kscore.exceptions.ClientError) as raised:
            deployment.create_wave(f"/{BUCKET}/in/tone.m4a", "out/late.json", CbUrl=receiver.url)
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
        proxy.restore()

        infos = {task_id: deployment.wait_task(task_id, timeout=120) for task_id in task_ids}
        assert {t: i["TaskStatus"] for t, i in infos.items()} == dict.fromkeys(task_ids, "succ")
        receiver.wait_for(TASKS, timeout=90)
        receiver.assert_quiet(2)  # and no second callback follows
        per_task = Counter(r.json["TaskID"] for r in receiver.requests)
        assert per_task == Counter(task_ids)
        assert all(r.json["Status"] == 3 for r in receiver.requests)

    log = deployment.server.log_path.read_text(errors="replace")[len(log_before) :]
    assert "database_unavailable" in log
    assert "Traceback" not in log, log
    finished = Counter(
        line.split("task_id=")[1].split()[0]
        for line in log_before.splitlines() + log.splitlines()
        if " task_finished " in line
    )
    assert finished == Counter(task_ids)
