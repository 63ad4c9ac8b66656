"""``worker/sources_part.py`` on real media (ffprobe, the sandbox) and the in-memory store:
the inputs in their order, the joined media's facts, the command shown by source names, and
the failures of a bad soundtrack or subtitle file."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from openkvs.engine.transcode import facts_from_probe
from openkvs.errors import TaskError
from openkvs.presets.avtrans import parse
from openkvs.presets.avtrans_ext import read_options
from openkvs.storage.memory import MemoryStorage
from openkvs.worker import sources_part as part
from openkvs.worker.job import Destination, Job, Source


def _make(path: Path, *args: str) -> bytes:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args, str(path)], check=True)
    return path.read_bytes()


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemoryStorage]:
    folder = tmp_path_factory.mktemp("sources-part")
    store = MemoryStorage()
    store.create_bucket("media")
    objects = {
        "a.mp4": _make(folder / "a.mp4", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:d=1",
                       "-f", "lavfi", "-i", "sine=d=1", "-c:v", "libx264", "-preset", "ultrafast",
                       "-c:a", "aac"),
        "b.mp4": _make(folder / "b.mp4", "-f", "lavfi", "-i", "testsrc2=size=96x96:rate=10:d=0.5",
                       "-c:v", "libx264", "-preset", "ultrafast"),
        "t.wav": _make(folder / "t.wav", "-f", "lavfi", "-i", "sine=d=2:sample_rate=22050"),
        "cue.srt": b"1\n00:00:00,500 --> 00:00:00,900\nHI\n",
    }  # fmt: skip
    for key, data in objects.items():
        store.put_bytes("media", key, data, acl="private", content_type="")
    yield store
    store.close()


def _job(storage: MemoryStorage, scratch: Path, items: list[tuple[str, str, int]]) -> Job:
    sources = tuple(
        Source("media", key, storage.source_for("media", key), kind, index)
        for key, kind, index in items
    )
    return Job(
        task=cast(Any, None),
        spec=None,
        options={},
        sources=sources,
        destination=Destination("media", "out.mp4", "", "private"),
        storage=storage,
        scratch=scratch,
        deadline=time.monotonic() + 60,
    )


def _part(job: Job, param: dict[str, Any], ext: dict[str, Any]) -> Any:
    spec = parse(param)
    items = [
        {"path": f"/{s.bucket}/{s.key}", "type": s.type, "index": s.index} for s in job.sources
    ]
    options = read_options(spec, ext, items)
    found = part._probe(job, job.source)
    stack = contextlib.ExitStack()
    with stack:
        composition, facts = part.sources_part(
            job, spec, options, facts_from_probe(found), found, stack
        )
        job.record_command(" ".join(a for args in composition.inputs for a in args))
    return composition, facts


def test_inputs_facts_and_names(storage: MemoryStorage, tmp_path: Path) -> None:
    items = [("a.mp4", "video", 0), ("b.mp4", "video", 1), ("t.wav", "audio", 2),
             ("cue.srt", "subtitle", 3)]  # fmt: skip
    job = _job(storage, tmp_path, items)
    shown: list[str] = []
    job.record_command = shown.append
    composition, facts = _part(job, {"f": "mkv"}, {"subtitle": "soft", "ss": 0.25})
    # Joined video first (input 1), then the soundtrack (2), then the soft track (3).
    # (each through the sandbox: a link named like the object, alone in its folder)
    assert [Path(args[-1]).name for args in composition.inputs] == [
        "source.mp4", "source.wav", "source.srt",
    ]  # fmt: skip
    assert all(args[-2] == "-i" and "-format_whitelist" in args for args in composition.inputs)
    assert composition.output_args == ("-map", "3:s:0", "-c:s:0", "copy")
    assert "[2:0]asetpts" in composition.audio_source and composition.owns_clip
    assert (facts.width, facts.height, facts.fps) == (160, 120, 25.0)
    assert abs(facts.duration - 1.5) < 0.05 and facts.sample_rate == 22050
    # The command names each source by its storage path, not the sandbox's link.
    assert storage.source_for("media", "b.mp4") in shown[0] and "openkvs-source-" not in shown[0]
    assert job.record_command == shown.append  # restored when the stack closed
    # The soft track's copy was cut at ss: the cue 0.25 s earlier.
    assert "00:00:00,250 --> 00:00:00,650" in (tmp_path / "subtitle0.srt").read_text()


def test_hls_soft_tracks_are_left_to_the_package(storage: MemoryStorage, tmp_path: Path) -> None:
    job = _job(storage, tmp_path, [("a.mp4", "video", 0), ("cue.srt", "subtitle", 1)])
    composition, _ = _part(job, {"f": "hls"}, {"subtitle": "soft"})
    # Opened as input 1 but not mapped into the HLS output: a WebVTT rendition (engine/hls.py).
    assert [Path(args[-1]).name for args in composition.inputs] == ["source.srt"]
    assert composition.output_args == ()
    assert [(t.input, t.name, t.language) for t in composition.subtitle_tracks] == [
        (1, "cue", ""),
    ]  # fmt: skip


def test_a_soundtrack_without_sound_is_3155(storage: MemoryStorage, tmp_path: Path) -> None:
    job = _job(storage, tmp_path, [("a.mp4", "video", 0), ("b.mp4", "audio", 1)])
    with pytest.raises(TaskError) as failed:
        _part(job, {"f": "mp4"}, {})
    assert failed.value.code == 3155 and "/media/b.mp4 has no audio stream" in failed.value.detail


def test_a_subtitle_file_too_large_is_3150(
    storage: MemoryStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(part, "MAX_SUBTITLE_BYTES", 10)
    job = _job(storage, tmp_path, [("a.mp4", "video", 0), ("cue.srt", "subtitle", 1)])
    with pytest.raises(TaskError) as failed:
        _part(job, {"f": "mp4"}, {})
    assert failed.value.code == 3150 and "over the 10 bytes" in failed.value.detail
