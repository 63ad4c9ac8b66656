"""Progress callbacks and progress reporting end to end.

A real ``openkvs serve`` runs the task; one local receiver gets both the progress callbacks
(ExtParam ``Callback.progress_cburl``, path ``/callback?progress``) and the completion
callback (``CbUrl``), so their arrival order is what a receiver sees. Waveform tasks are fast
(two minutes of audio decode in a fraction of a second), so only the first and the final
progress values arrive; the decoded share itself is checked at the engine and the executor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook
from tests.integration.conftest import BUCKET, Deployment
from tests.support.media import make_audio, make_video
from tests.support.receiver import CallbackReceiver, Request
from tests.support.server import cli

from openkvs import kinds
from openkvs.config import Settings
from openkvs.engine.wave import WaveSpec, extract_wave
from openkvs.model import TaskRecord, TaskStatus
from openkvs.storage.local import LocalStorage
from openkvs.worker.job import Phase
from openkvs.worker.testing import Reports, job_for
from openkvs.worker.wave import WaveExecutor

SECONDS = 90


@pytest.fixture(scope="module")
def long_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_audio(tmp_path_factory.mktemp("long"), "long", fmt="wav", seconds=SECONDS)


def _secret(kvs: Deployment) -> str:
    result = cli(kvs.data_dir, "keys", "webhook-secret", "--user", "default")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _run_with_callbacks(
    kvs: Deployment, create: Callable[[dict[str, Any]], str]
) -> tuple[str, list[Request], Request]:
    """Create a task with both callbacks to one receiver; (TaskID, progress callbacks in
    arrival order, the completion callback)."""
    with CallbackReceiver() as rx:
        ext = {"Callback": {"progress_cburl": f"{rx.url}?progress", "progress_cbmethod": "POST",
                            "progress_interval": 1}}  # fmt: skip
        task_id = create({"CbUrl": rx.url, "ExtParam": json.dumps(ext)})
        deadline = time.monotonic() + 120
        while not any(r.json.get("Status") in (3, 4) for r in rx.requests):
            assert time.monotonic() < deadline, [r.json for r in rx.requests]
            time.sleep(0.05)
        rx.assert_quiet(0.5)  # nothing after the completion
        got = rx.requests
    completions = [r for r in got if r.json.get("Status") != 2]
    assert len(completions) == 1, [r.json for r in got]
    assert got[-1] is completions[0], "a progress callback arrived after the completion"
    progress = got[:-1]
    assert all(r.path == "/callback?progress" for r in progress)
    assert completions[0].path == "/callback"
    return task_id, progress, completions[0]


def _check_progress(
    task_id: str, task_type: str, progress: list[Request], completion: Request, secret: str
) -> list[tuple[str, int]]:
    """The seed's Status-2 body, field by field; progress never lower within a status;
    transcoding reaches 100 before the completion. Returns the (status, progress) seen."""
    states: list[tuple[str, int]] = []
    for request in progress:
        body = request.json
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        assert set(body) == {"TaskID", "Status", "Type", "Details"}
        assert body["TaskID"] == task_id
        assert type(body["Status"]) is int and body["Status"] == 2
        assert body["Type"] == task_type
        assert set(body["Details"]) == {"status", "progress"}
        status, percent = body["Details"]["status"], body["Details"]["progress"]
        assert status in ("transcoding", "uploading")
        assert type(percent) is int and 0 <= percent <= 100
        assert Webhook(secret).verify(request.body, request.headers) == body
        states.append((status, percent))
    ids = [r.headers["webhook-id"] for r in progress]
    assert ids == [f"msg_{task_id}_p1_{n}" for n in range(1, len(ids) + 1)]
    phases = [status for status, _ in states]
    assert phases == sorted(phases, key=["transcoding", "uploading"].index), states
    for phase in ("transcoding", "uploading"):
        values = [p for s, p in states if s == phase]
        assert values == sorted(set(values)), states  # rising, never repeated
    assert ("transcoding", 100) in states, states
    assert states[0] == ("transcoding", 0), states  # the first value goes at once
    assert all(r.time <= completion.time for r in progress)
    assert completion.json["Status"] == 3 and completion.json["TaskID"] == task_id
    return states


def test_wave_task_progress_callbacks(kvs: Deployment, long_audio: Path) -> None:
    src = kvs.upload(long_audio, "in/progress/long.wav")

    def create(extra: dict[str, Any]) -> str:
        return kvs.create_wave(src, "out/progress/long.json", points=200, **extra)

    task_id, progress, completion = _run_with_callbacks(kvs, create)
    states = _check_progress(task_id, "audiowave", progress, completion, _secret(kvs))
    assert states[-1] == ("uploading", 100), states
    info = kvs.wait_task(task_id)
    assert (info["TaskStatus"], info["Progress"]) == ("succ", 100)


def test_no_progress_callbacks_without_a_progress_url(kvs: Deployment, long_audio: Path) -> None:
    src = kvs.upload(long_audio, "in/progress/quiet.wav")
    with CallbackReceiver() as rx:
        kvs.create_wave(src, "out/progress/quiet.json", CbUrl=rx.url)
        [only] = rx.wait_for(1, timeout=60)
        rx.assert_quiet(0.5)
    assert only.json["Status"] == 3


@pytest.mark.skipif(
    not kinds.BY_NAME["avtrans"].executor, reason="avtrans tasks do not run in this build yet"
)
def test_avtrans_task_progress_callbacks(kvs: Deployment, tmp_path: Path) -> None:
    clip = make_video(tmp_path, "clip", seconds=20, audio=True)
    src = kvs.upload(clip, "in/progress/clip.mp4")
    reply = kvs.client.preset(
        Preset="progress_mp4",
        PresetType="avtrans",
        Param={"f": "mp4", "VIDEO": {"vb": "300k"}, "AUDIO": {"ab": "64k"}},
    )
    assert reply["ErrNum"] == 0, reply

    def create(extra: dict[str, Any]) -> str:
        reply = kvs.client.create_task(
            Preset="progress_mp4",
            SrcInfo=[{"path": src}],
            DstBucket=BUCKET,
            DstObjectKey="out/progress/clip.mp4",
            **extra,
        )
        assert reply["ErrNum"] == 0, reply
        return str(reply["TaskID"])

    task_id, progress, completion = _run_with_callbacks(kvs, create)
    _check_progress(task_id, "avtrans", progress, completion, _secret(kvs))


# -- the decoded share, without the server ----------------------------------------------------


@pytest.mark.parametrize("parallel", [1, 2])
def test_extract_wave_reports_the_decoded_share(long_audio: Path, parallel: int) -> None:
    seen: list[float] = []
    commands: list[str] = []
    plain = extract_wave(str(long_audio), WaveSpec(points=100), parallel=parallel)
    doc = extract_wave(
        str(long_audio),
        WaveSpec(points=100),
        parallel=parallel,
        progress=seen.append,
        on_command=commands.append,
    )
    assert doc == plain  # reporting changes nothing
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen
    assert seen[-1] == 100.0 and all(p <= 99.0 for p in seen[:-1])
    between = [p for p in seen if 0 < p < 99]
    assert len(between) >= 5, seen  # 90 s of 16-bit samples come in pieces of 1 MiB
    [command] = commands  # the decoders, one per range, naming the source (not a link)
    assert command.count("-c:a pcm_s16le") == parallel
    assert command.count(f"-i {long_audio}") == parallel


def test_wave_executor_reports_transcoding_progress(long_audio: Path, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "buckets")
    storage.create_bucket(BUCKET)
    storage.put_file(BUCKET, "in/long.wav", long_audio, acl="private", content_type="audio/wav")
    task = TaskRecord(
        task_id="1" * 32 + "20240315",
        user_id=1,
        action="CreateWaveTask",
        task_type="audiowave",
        preset="wave",
        pipeline="usual",
        is_top=False,
        status=TaskStatus.EXEC,
        request={
            "SrcInfo": [{"path": f"/{BUCKET}/in/long.wav"}],
            "DstBucket": BUCKET,
            "DstDir": "",
            "DstObjectKey": "out/long.json",
            "source": {"bucket": BUCKET, "key": "in/long.wav"},
            "wave": {"points": 50, "layout": "points", "ss": None, "duration": None},
        },
    )
    reports = Reports()
    with job_for(task, storage, tmp_path / "scratch", reports=reports) as job:
        items = WaveExecutor(Settings(), storage).run(job)
    assert items == [{"dstpath": "out/long.json"}]
    transcoding = [p for phase, p in reports.progress if phase is Phase.TRANSCODING]
    assert transcoding == sorted(transcoding)
    assert sum(1 for p in transcoding if 0 < p < 100) >= 5, reports.progress
    assert reports.progress[-1] == (Phase.UPLOADING, 100)
    [command] = reports.commands
    assert "-c:a pcm_s16le" in command
