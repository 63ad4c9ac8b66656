"""How storage failures become codes: at creation (1011/1013/1210, 503) and at run time
(2041 for sources, 2033 for outputs), with retries while the store is unavailable. Over the
in-memory fake, whose ``fail()`` makes the next calls raise."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest

from openkvs.errors import ApiError, ServiceUnavailable, TaskError
from openkvs.model import User
from openkvs.service.sources import check_destination, check_source
from openkvs.storage.base import AccessDenied, NotFound, Unavailable
from openkvs.storage.memory import MemoryStorage
from openkvs.storage.retry import StorageRetry
from openkvs.store.buckets import Access
from openkvs.worker import job as job_module
from openkvs.worker import outputs
from openkvs.worker.job import Destination, Job, JobMaker, Source, _naming_objects
from openkvs.worker.outputs import OutputFile

NO_WAIT = StorageRetry(delays=(0.0, 0.0))


class _Grants:
    """A bucket store where the user may do ``access`` with every bucket."""

    def __init__(self, access: Access = Access.READWRITE) -> None:
        self._access = access

    def access(self, user_id: int, name: str) -> Access:
        return self._access


def _storage() -> MemoryStorage:
    storage = MemoryStorage()
    storage.create_bucket("media")
    storage.put_bytes("media", "in/a.mp4", b"data", acl="private", content_type="video/mp4")
    return storage


# -- the retry policy --------------------------------------------------------------------


def test_retry_waits_between_attempts_then_gives_up() -> None:
    waits: list[float] = []
    calls = 0

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise Unavailable("down")
        return "ok"

    policy = StorageRetry(delays=(1.0, 2.0, 4.0))
    assert policy.call(flaky, sleep=waits.append) == "ok"
    assert (calls, waits) == (3, [1.0, 2.0])

    def down() -> None:
        raise Unavailable("down")

    waits.clear()
    with pytest.raises(Unavailable):
        policy.call(down, sleep=waits.append)
    assert waits == [1.0, 2.0, 4.0]


def test_retry_never_repeats_not_found_or_denied() -> None:
    for error in (NotFound("x"), AccessDenied("x")):
        waits: list[float] = []

        def fails(error: Exception = error) -> None:
            raise error

        with pytest.raises(type(error)):
            StorageRetry().call(fails, sleep=waits.append)
        assert waits == []


class _CancelledWhileWaiting(threading.Event):
    """A cancel event that is set during the first wait."""

    def __init__(self) -> None:
        super().__init__()
        self.waited: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waited.append(timeout)
        self.set()
        return True


def test_retry_stops_waiting_when_cancelled() -> None:
    calls = 0

    def down() -> None:
        nonlocal calls
        calls += 1
        raise Unavailable("down")

    cancel = _CancelledWhileWaiting()
    with pytest.raises(Unavailable):
        StorageRetry(delays=(30.0, 30.0)).call(down, cancel=cancel)
    assert (calls, cancel.waited) == (1, [30.0])
    with pytest.raises(Unavailable):  # cancelled before: no waiting at all
        StorageRetry(delays=(30.0,)).call(down, cancel=cancel)
    assert (calls, cancel.waited) == (2, [30.0])


# -- at creation ---------------------------------------------------------------------------


def test_creation_codes() -> None:
    storage, user, grants = _storage(), User(1, "u"), cast(Any, _Grants())
    assert check_source(storage, grants, user, "/media/in/a.mp4") == ("media", "in/a.mp4")
    cases: list[tuple[Any, int]] = [
        (lambda: check_source(storage, grants, user, "/nobucket/a.mp4"), 1011),
        (lambda: check_source(storage, grants, user, "/media/in/b.mp4"), 1210),
        (lambda: check_source(storage, cast(Any, _Grants(Access.NONE)), user, "/media/x"), 1212),
        (lambda: check_destination(storage, grants, user, "nobucket"), 1011),
        (lambda: check_destination(storage, cast(Any, _Grants(Access.READ)), user, "media"), 1212),
    ]
    for call, code in cases:
        with pytest.raises(ApiError) as info:
            call()
        assert info.value.code == code

    # The store refusing openkvs is 1013, on the bucket or on the object.
    storage.fail(AccessDenied("refused"))
    with pytest.raises(ApiError) as info:
        check_source(storage, grants, user, "/media/in/a.mp4")
    assert info.value.code == 1013
    storage.fail(AccessDenied("refused"))
    with pytest.raises(ApiError) as info:
        check_destination(storage, grants, user, "media")
    assert info.value.code == 1013

    # A store that cannot be reached is the gateway's 503, which clients retry.
    storage.fail(Unavailable("down"))
    with pytest.raises(ServiceUnavailable) as unavailable:
        check_source(storage, grants, user, "/media/in/a.mp4")
    assert unavailable.value.status == 503
    assert "object storage" in unavailable.value.message


# -- at run time ---------------------------------------------------------------------------


def test_sources_are_located_through_outages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(job_module, "RUNTIME_RETRY", NO_WAIT)
    storage = _storage()
    maker = JobMaker(storage, tmp_path, 60)
    storage.fail(Unavailable("down"), times=2)
    found = maker._locate({"bucket": "media", "key": "in/a.mp4"})
    assert Path(found.location).read_bytes() == b"data"

    storage.fail(Unavailable("down"), times=3)  # one more than the policy waits for
    with pytest.raises(TaskError) as info:
        maker._locate({"bucket": "media", "key": "in/a.mp4"})
    assert info.value.code == 2041
    with pytest.raises(TaskError) as info:
        maker._locate({"bucket": "media", "key": "in/gone.mp4"})
    assert info.value.code == 2041
    storage.close()


def _job(storage: MemoryStorage, scratch: Path, bucket: str = "media") -> Job:
    return Job(
        task=cast(Any, None),
        spec=None,
        options={},
        sources=(),
        destination=Destination(bucket=bucket, key="out/x.mp4", dir="", acl="public-read"),
        storage=storage,
        scratch=scratch,
        deadline=time.monotonic() + 60,
    )


def test_outputs_are_written_through_outages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(outputs, "RUNTIME_RETRY", NO_WAIT)
    storage = _storage()
    output = tmp_path / "x.mp4"
    output.write_bytes(b"out")
    storage.fail(Unavailable("down"), times=2)
    outputs.upload(_job(storage, tmp_path), [OutputFile(output, "out/x.mp4")])
    info = storage.object_info("media", "out/x.mp4")
    assert (info.size, info.acl, info.content_type) == (3, "public-read", "video/mp4")

    storage.fail(Unavailable("down"), times=3)
    with pytest.raises(TaskError) as failed:
        outputs.put_bytes(_job(storage, tmp_path), "out/w.json", b"{}")
    assert failed.value.code == 2033
    outputs.put_bytes(_job(storage, tmp_path), "out/w.json", b"{}")
    assert storage.object_info("media", "out/w.json").content_type == "application/json"

    for error in (NotFound("gone"), AccessDenied("refused")):
        storage.fail(error)
        with pytest.raises(TaskError) as failed:
            outputs.upload(_job(storage, tmp_path), [OutputFile(output, "out/x.mp4")])
        assert failed.value.code == 2033
    with pytest.raises(TaskError) as failed:
        outputs.upload(_job(storage, tmp_path, "deleted"), [OutputFile(output, "out/x.mp4")])
    assert failed.value.code == 2033


def test_commands_name_url_sources_by_their_path() -> None:
    url = "https://s3.example/b/in/a%20b.mp4?X-Amz-Credential=AKIA&X-Amz-Signature=f00"
    sources = (Source("media", "in/a b.mp4", url), Source("media", "local.mp4", "/data/x.mp4"))
    recorded: list[str] = []
    record = _naming_objects(recorded.append, sources)
    record(f"ffmpeg -i '{url}' -i /data/x.mp4 out.mp4")
    assert recorded == ["ffmpeg -i '/media/in/a b.mp4' -i /data/x.mp4 out.mp4"]
    # Local paths only: the recorder itself, unchanged.
    assert _naming_objects(recorded.append, sources[1:]) == recorded.append
