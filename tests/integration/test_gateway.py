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
