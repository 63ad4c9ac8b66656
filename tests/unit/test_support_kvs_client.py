"""The hermetic kscore client helper sends what kscore-client.md §2/§6 says, and nothing
from the environment leaks into it. A tiny stub HTTP server records the SDK's requests.

(It opens local sockets: it is a test of a test tool, kept next to the other unit tests.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.support.kvs_client import (
    close_kvs_client,
    import_kscore,
    kvs_client,
    make_kvs_client,
    make_wrapper,
)


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


class StubKvs(ThreadingHTTPServer):
    """Answers every request with the next scripted (status, JSON body)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.seen: list[Seen] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StubKvs

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append(
            Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
        )
        status, payload = (
            self.server.answers.pop(0)
            if self.server.answers
            else (200, {"ErrNum": 0, "ErrMsg": "success", "TaskID": "f" * 40})
        )
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def stub() -> Iterator[StubKvs]:
    server = StubKvs()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def hostile_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Everything kscore would otherwise pick up from the environment, set to break it."""
    dead_proxy = "http://127.0.0.1:9"  # nothing listens on the discard port
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("KS_PROFILE", "no-such-profile")  # would raise ProfileNotFound
    monkeypatch.setenv("KS_DEFAULT_PROFILE", "no-such-profile")
    monkeypatch.setenv("KS_CONFIG_FILE", str(tmp_path / "bad-config"))
    (tmp_path / "bad-config").write_text("this is [not an ini file\n")
    monkeypatch.setenv("KS_DATA_PATH", str(tmp_path / "models"))  # an empty model path
    (tmp_path / "models" / "kvs" / "2099-01-01").mkdir(parents=True)
    (tmp_path / "models" / "kvs" / "2099-01-01" / "service-2.yaml").write_text("{}\n")
    monkeypatch.setenv("KS_ACCESS_KEY_ID", "ENVAK")
    monkeypatch.setenv("KS_SECRET_ACCESS_KEY", "ENVSK")
    monkeypatch.setenv("KS_DEFAULT_REGION", "env-region-1")
    (tmp_path / ".kscore.cfg").write_text("[Domain]\nks_domain=example.invalid\n")
    monkeypatch.chdir(tmp_path)


def test_create_wave_task_goes_out_as_a_signed_json_post(stub: StubKvs, hostile_env: None) -> None:
    with kvs_client(stub.url, "AKTEST", "SKTEST") as client:
        answer = client.create_wave_task(
            Preset="wave",
            SrcInfo=[{"path": "/media-in/a.m4a"}],
            DstBucket="media-out",
            DstObjectKey="a.wave.json",
            CbUrl="http://127.0.0.1:1/cb",
            points=800,
        )

    assert answer == {"ErrNum": 0, "ErrMsg": "success", "TaskID": "f" * 40}
    (seen,) = stub.seen
    assert seen.method == "POST"
    assert seen.target == "/"
    assert seen.headers["X-Action"] == "CreateWaveTask"
    assert seen.headers["X-Amz-Target"] == "kvs.CreateWaveTask"
    assert seen.headers["X-Version"] == "2017-01-01"
    assert seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == {
        "Preset": "wave",
        "SrcInfo": [{"path": "/media-in/a.m4a"}],
        "DstBucket": "media-out",
        "DstObjectKey": "a.wave.json",
        "CbUrl": "http://127.0.0.1:1/cb",
        "points": 800,
    }
    auth = seen.headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKTEST/")
    assert "/cn-beijing-6/kvs/aws4_request, " in auth
    assert (
        "SignedHeaders=accept;content-type;host;x-action;x-amz-date;x-amz-target;x-version" in auth
    )


def test_get_operation_and_region(stub: StubKvs, hostile_env: None) -> None:
    with kvs_client(stub.url, "AK", "SK", region="local") as client:
        client.get_task_by_task_id(TaskID="0123456789abcdef0123456789abcdef20261124")
    (seen,) = stub.seen
    assert seen.method == "GET"
    assert seen.target == "/?TaskID=0123456789abcdef0123456789abcdef20261124"
    assert seen.headers["X-Action"] == "GetTaskByTaskID"
    assert "/local/kvs/aws4_request" in seen.headers["Authorization"]
    assert seen.body == b""


def test_without_extra_ops_there_is_no_create_wave_task(stub: StubKvs) -> None:
    with kvs_client(stub.url, "AK", "SK", extra_ops=False) as client:
        assert not hasattr(client, "create_wave_task")
        assert hasattr(client, "create_task")


def test_retries_disabled_by_default(stub: StubKvs) -> None:
    client_error = import_kscore().exceptions.ClientError
    stub.answers = [(503, {"Error": {"Code": "ServiceUnavailable", "Message": "busy"}})]
    with kvs_client(stub.url, "AK", "SK") as client, pytest.raises(client_error) as caught:
        client.create_task(Preset="p")
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert len(stub.seen) == 1


def test_retries_can_be_kept(stub: StubKvs) -> None:
    stub.answers = [(503, {"Error": {"Code": "ServiceUnavailable", "Message": "busy"}})]
    with kvs_client(stub.url, "AK", "SK", disable_retries=False) as client:
        assert client.create_task(Preset="p")["ErrNum"] == 0
    assert len(stub.seen) == 2


def test_wrapper_sends_its_own_defaults(stub: StubKvs) -> None:
    client = make_kvs_client(stub.url, "AK", "SK")
    try:
        wrapper = make_wrapper(client)
        wrapper.GetPresetList()
        wrapper.GetTaskMetaInfo()
        wrapper.GetTaskMetaInfo(TaskID="x" * 40)
    finally:
        close_kvs_client(client)
    preset_list, no_task_id, with_task_id = stub.seen
    assert preset_list.headers["X-Action"] == "GetPresetList"
    assert preset_list.target == "/?WithDetail=0&PresetType=&Presets="
    assert no_task_id.headers["X-Action"] == "GetTaskList"
    assert no_task_id.target.startswith("/?StartDate=")
    assert with_task_id.headers["X-Action"] == "GetTaskMetaInfo"
    assert with_task_id.target == "/?TaskID=" + "x" * 40


def test_failed_imports_stay_import_errors_after_kscore_is_loaded(stub: StubKvs) -> None:
    # kscore's vendored six would turn this into an ImportWarning (an error here).
    close_kvs_client(make_kvs_client(stub.url, "AK", "SK"))
    with pytest.raises(ImportError):
        import openkvs_no_such_module  # noqa: F401
