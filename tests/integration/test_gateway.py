"""Gateway behaviour through real clients: SigV4 failures, actions, paths, tenancy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from tests.integration.conftest import Deployment
from tests.support import kvs_client
from tests.support.kvs_client import close_kvs_client, make_kvs_client
from tests.support.media import make_audio
from tests.support.server import create_keys

from openkvs.api.sigv4 import presign_url

TASK_ID = "0" * 40


@pytest.fixture
def other_client(kvs: Deployment) -> Iterator[Any]:
    client = make_kvs_client(kvs.server.url, kvs.access_key, "not-the-secret")
    yield client
    close_kvs_client(client)


def _client_error() -> type[Exception]:
    return kvs_client._import_kscore().exceptions.ClientError  # type: ignore[no-any-return]


def test_wrong_secret_is_403(other_client: Any) -> None:
    with pytest.raises(_client_error()) as info:
        other_client.get_task_by_task_id(TaskID=TASK_ID)
    response = info.value.response  # type: ignore[attr-defined]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_unknown_key_is_403(kvs: Deployment) -> None:
    client = make_kvs_client(kvs.server.url, "AKNOSUCHKEY000000000", "x")
    try:
        with pytest.raises(_client_error()) as info:
            client.get_task_by_task_id(TaskID=TASK_ID)
    finally:
        close_kvs_client(client)
    assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"  # type: ignore[attr-defined]


def test_request_signed_20_minutes_ago_is_403(
    kvs: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=20)

    class Past(datetime):
        @classmethod
        def utcnow(cls) -> Past:  # type: ignore[override]
            return cls.fromtimestamp(past.replace(tzinfo=UTC).timestamp(), UTC).replace(tzinfo=None)

    monkeypatch.setattr(
        kvs_client._import_kscore().auth, "datetime", SimpleNamespace(datetime=Past)
    )
    with pytest.raises(_client_error()) as info:
        kvs.client.create_wave_task(
            Preset="wave",
            SrcInfo=[{"path": "/media/x.mp3"}],
            DstBucket="media",
            DstObjectKey="x.json",
            points=1,
        )
    response = info.value.response  # type: ignore[attr-defined]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"]["Code"] == "RequestExpired"


def test_other_region_is_refused(kvs: Deployment) -> None:
    client = make_kvs_client(kvs.server.url, kvs.access_key, kvs.secret_key, region="cn-shanghai-2")
    try:
        with pytest.raises(_client_error()) as info:
            client.get_task_by_task_id(TaskID=TASK_ID)
    finally:
        close_kvs_client(client)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403  # type: ignore[attr-defined]


def test_gateway_errors_over_plain_http(kvs: Deployment) -> None:
    with httpx.Client(base_url=kvs.server.url, trust_env=False) as http:
        unsigned = http.get("/", params={"Action": "GetTaskByTaskID", "TaskID": TASK_ID})
        assert unsigned.status_code == 400
        assert unsigned.json()["Error"]["Code"] == "MissingAuthenticationToken"
        assert unsigned.headers["server"] == "ksyun-open-platform"
        assert unsigned.json()["RequestId"] == unsigned.headers["x-ksc-request-id"]

        def presigned(query: str, path: str = "/") -> httpx.Response:
            url = presign_url(
                "GET",
                f"{kvs.server.url}{path}?{query}",
                kvs.access_key,
                kvs.secret_key,
                "cn-beijing-6",
                now=datetime.now(UTC),
            )
            return http.get(url)

        ok = presigned(f"Action=GetTaskByTaskID&Version=2017-01-01&TaskID={TASK_ID}")
        assert ok.status_code == 200 and ok.json()["ErrNum"] == 1200

        unknown = presigned("Action=NoSuchAction&Version=2017-01-01")
        assert unknown.status_code == 400 and unknown.json()["Error"]["Code"] == "InvalidAction"

        version = presigned(f"Action=GetTaskByTaskID&Version=2016-09-19&TaskID={TASK_ID}")
        assert version.status_code == 400
        assert version.json()["Error"]["Code"] == "InvalidVersion"

        elsewhere = presigned(f"Action=GetTaskByTaskID&TaskID={TASK_ID}", path="/other")
        assert elsewhere.status_code == 400
        assert elsewhere.json()["Error"]["Code"] == "InvalidAction"


def test_tasks_are_private_to_their_user(kvs: Deployment, tmp_path: Path) -> None:
    src = kvs.upload(make_audio(tmp_path, "mine", fmt="ogg", seconds=1), "in/private.ogg")
    reply = kvs.client.create_wave_task(
        Preset="wave",
        SrcInfo=[{"path": src}],
        DstBucket="media",
        DstObjectKey="private.json",
        points=5,
    )
    task_id = reply["TaskID"]
    ak, sk = create_keys(kvs.data_dir, user="mallory")
    mallory = make_kvs_client(kvs.server.url, ak, sk)
    try:
        assert kvs.client.get_task_by_task_id(TaskID=task_id)["ErrNum"] == 0
        theirs = mallory.get_task_by_task_id(TaskID=task_id)
        assert theirs["ErrNum"] == 1200 and "TaskInfo" not in theirs
    finally:
        close_kvs_client(mallory)


def _kscore_signed(kvs: Deployment, url: str, headers: dict[str, str]) -> dict[str, str]:
    """The headers of a GET signed by kscore's own SigV4 signer: it signs ``host``,
    ``x-amz-date`` and every header given here."""
    kscore = kvs_client.import_kscore()
    request = kscore.ksrequest.KSRequest(method="GET", url=url, data=b"", headers=dict(headers))
    credentials = kscore.credentials.Credentials(kvs.access_key, kvs.secret_key)
    kscore.auth.SigV4Auth(credentials, "kvs", "cn-beijing-6").add_auth(request)
    return {
        name: value.decode() if isinstance(value, bytes) else value
        for name, value in request.prepare().headers.items()
    }


def test_an_unsigned_action_header_is_refused(kvs: Deployment) -> None:
    url = f"{kvs.server.url}/?TaskID={TASK_ID}"
    with httpx.Client(trust_env=False) as http:
        signed = _kscore_signed(kvs, url, {"X-Action": "GetTaskByTaskID"})
        assert "SignedHeaders=host;x-action;x-amz-date," in signed["Authorization"]
        ok = http.get(url, headers=signed)
        assert ok.status_code == 200 and ok.json()["ErrNum"] == 1200

        bare = _kscore_signed(kvs, url, {})
        assert "SignedHeaders=host;x-amz-date," in bare["Authorization"]
        for added in (
            {"X-Action": "GetTaskByTaskID"},
            {"X-Amz-Target": "kvs.GetTaskByTaskID"},
        ):
            refused = http.get(url, headers={**bare, **added})
            assert refused.status_code == 400, refused.text
            assert refused.json()["Error"]["Code"] == "IncompleteSignature"
            assert next(iter(added)) in refused.json()["Error"]["Message"]

        # Signing X-Amz-Target does not make an X-Action added later acceptable.
        target = _kscore_signed(kvs, url, {"X-Amz-Target": "kvs.GetTaskByTaskID"})
        assert http.get(url, headers=target).json()["ErrNum"] == 1200
        smuggled = http.get(url, headers={**target, "X-Action": "DelTaskByTaskID"})
        assert smuggled.status_code == 400
        assert smuggled.json()["Error"]["Code"] == "IncompleteSignature"

        # A presigned URL signs only host: its action must be in the (signed) query.
        presigned = presign_url(
            "GET", url, kvs.access_key, kvs.secret_key, "cn-beijing-6", now=datetime.now(UTC)
        )
        refused = http.get(presigned, headers={"X-Action": "GetTaskByTaskID"})
        assert refused.json()["Error"]["Code"] == "IncompleteSignature"
