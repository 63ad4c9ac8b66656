"""The avinfo executor (worker/avinfo.py) with real ffprobe and real local storage.

The same files as the end-to-end test (``test_avinfo.py``), without the server: the item it
returns must be ffprobe's own description, ``format.filename`` excepted (see there).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.integration.test_avinfo import (
    MEDIA,
    SAMPLES,
    assert_is_ffprobe_output,
    media_file,
    sample_file,
)

from openkvs.config import Settings
from openkvs.errors import TaskError
from openkvs.model import TaskRecord, TaskStatus
from openkvs.storage.local import LocalStorage
from openkvs.worker.avinfo import AvinfoExecutor
from openkvs.worker.testing import job_for

BUCKET = "media"


def _run_job(
    executor: AvinfoExecutor,
    storage: LocalStorage,
    task: TaskRecord,
    cancel: threading.Event | None = None,
) -> list[dict[str, Any]]:
    with job_for(task, storage, storage.root.parent / "scratch", cancel=cancel) as job:
        return executor.run(job)


def _task(key: str, bucket: str = BUCKET) -> TaskRecord:
    return TaskRecord(
        task_id="0" * 32 + "20240315",
        user_id=1,
        action="CreateTask",
        task_type="avinfo",
        preset="info",
        pipeline="usual",
        is_top=False,
        status=TaskStatus.EXEC,
        request={
            "SrcInfo": [{"path": f"/{bucket}/{key}", "index": 0}],
            "DstBucket": "",
            "DstDir": "",
            "DstObjectKey": "",
            "source": {"bucket": bucket, "key": key},
            "preset": {"name": "info", "type": "avinfo", "param": {}},
        },
    )


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    store = LocalStorage(tmp_path / "buckets")
    store.create_bucket(BUCKET)
    return store


def _files(storage: LocalStorage) -> set[Path]:
    return {p for p in storage.root.rglob("*") if p.is_file()}


def _run(storage: LocalStorage, local: Path, key: str) -> list[dict[str, Any]]:
    storage.put_file(BUCKET, key, local, acl="private", content_type="application/octet-stream")
    before = _files(storage)
    items = _run_job(AvinfoExecutor(Settings(), storage), storage, _task(key))
    assert _files(storage) == before, "avinfo must write nothing"
    return items


def _check(storage: LocalStorage, local: Path, key: str) -> None:
    [item] = _run(storage, local, key)
    assert set(item) == {"dstpath", "metainfo"} and item["dstpath"] == ""
    assert_is_ffprobe_output(item["metainfo"], local, f"/{BUCKET}/{key}")
    assert str(storage.root) not in item["metainfo"]


@pytest.mark.parametrize("name", sorted(MEDIA))
def test_executor_matches_ffprobe(storage: LocalStorage, media_dir: Path, name: str) -> None:
    _check(storage, media_file(media_dir, name), f"in/{name}")


@pytest.mark.parametrize("name", SAMPLES)
def test_executor_matches_ffprobe_on_real_recordings(storage: LocalStorage, name: str) -> None:
    _check(storage, sample_file(name), f"samples/{name}")


def test_enough_distinct_files_without_the_samples() -> None:
    assert len(MEDIA) >= 10
    containers = {name.rsplit(".", 1)[1] for name in MEDIA}
    assert {"mp4", "mkv", "webm", "mov", "flv", "ts", "ogg", "mp3", "m4a", "wav"} <= containers


def test_non_ascii_key(storage: LocalStorage, media_dir: Path) -> None:
    key = "音乐/歌 曲.m4a"
    [item] = _run(storage, media_file(media_dir, "aac.m4a"), key)
    assert json.loads(item["metainfo"])["format"]["filename"] == f"/{BUCKET}/{key}"
    assert f'"filename":"/{BUCKET}/{key}"' in item["metainfo"]


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("noise.bin", bytes(range(256)) * 64, 3150),
        ("subs.srt", b"1\n00:00:00,000 --> 00:00:01,000\nHi\n\n", 2058),
        ("tags.ffmeta", b";FFMETADATA1\ntitle=nothing\n", 2058),
        ("empty.mp4", b"", 3150),
    ],
)
def test_failures(
    storage: LocalStorage, tmp_path: Path, name: str, content: bytes, code: int
) -> None:
    local = tmp_path / name
    local.write_bytes(content)
    with pytest.raises(TaskError) as info:
        _run(storage, local, f"bad/{name}")
    assert info.value.code == code, info.value


def test_source_gone_is_2041(storage: LocalStorage) -> None:
    with pytest.raises(TaskError) as info:
        _run_job(AvinfoExecutor(Settings(), storage), storage, _task("never/uploaded.mp4"))
    assert info.value.code == 2041


class _FifoStorage(LocalStorage):
    """Every object reads from a FIFO nobody writes to: ffprobe blocks in ``open``."""

    def __init__(self, root: Path, fifo: Path) -> None:
        super().__init__(root)
        self.fifo = fifo

    def source_for(self, bucket: str, key: str) -> str:
        return str(self.fifo)


@pytest.fixture
def stuck_storage(tmp_path: Path) -> _FifoStorage:
    fifo = tmp_path / "stuck.mp4"
    os.mkfifo(fifo)
    return _FifoStorage(tmp_path / "buckets", fifo)


def test_cancel_stops_ffprobe_with_2005(stuck_storage: _FifoStorage) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(TaskError) as info:
            _run_job(
                AvinfoExecutor(Settings(), stuck_storage), stuck_storage, _task("x.mp4"), cancel
            )
    finally:
        timer.cancel()
    assert info.value.code == 2005
    assert time.monotonic() - started < 5


def test_timeout_is_3187(stuck_storage: _FifoStorage) -> None:
    with pytest.raises(TaskError) as info:
        _run_job(
            AvinfoExecutor(Settings(), stuck_storage, timeout=0.3), stuck_storage, _task("x.mp4")
        )
    assert info.value.code == 3187


def test_rotation_and_tags_are_reported(storage: LocalStorage, media_dir: Path) -> None:
    [item] = _run(storage, media_file(media_dir, "rotated-phone.mp4"), "in/phone.mp4")
    doc = json.loads(item["metainfo"])
    [video] = [s for s in doc["streams"] if s["codec_type"] == "video"]
    [matrix] = [d for d in video["side_data_list"] if d["side_data_type"] == "Display Matrix"]
    assert abs(matrix["rotation"]) == 90 and "\n" in matrix["displaymatrix"]
    assert doc["format"]["tags"]["title"] == "Vidéo 测试 🎬"
    assert doc["format"]["tags"]["comment"] == 'say "hi" \\ bye'
    assert '"title":"Vidéo 测试 🎬"' in item["metainfo"]  # UTF-8, not \u escapes
