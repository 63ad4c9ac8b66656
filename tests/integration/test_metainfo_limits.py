"""A file with a 5 MB tag: avinfo, GetTaskMetaInfo and FetchMetaInfo stay within the
metainfo size limits (engine/metainfo.py), and FetchMetaInfo's concurrency is bounded."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.conftest import Deployment, deploy

from openkvs.config import load
from openkvs.engine.metainfo import MAX_METAINFO_BYTES, MAX_TAGS, MAX_VALUE_BYTES
from openkvs.errors import Throttling
from openkvs.runtime import open_services
from openkvs.service.metainfo import fetch_meta_info
from openkvs.store.buckets import Grant

COMMENT = "c" * (5 * 1024 * 1024)
TITLE = "长" * 2000  # 6000 bytes of UTF-8: cut on a character boundary


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1])


def _tagged_file(folder: Path) -> Path:
    """One second of AAC in MP4 with a 5 MB comment, a long CJK title and 100 more tags
    (through an ffmetadata file: one argument cannot hold 5 MB)."""
    meta = folder / "meta.txt"
    extra = "".join(f"tag{i:03d}=v{i}\n" for i in range(100))
    meta.write_text(f";FFMETADATA1\ncomment={COMMENT}\ntitle={TITLE}\n{extra}", "utf-8")
    out = folder / "tagged.m4a"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
         "-i", str(meta), "-map_metadata", "1", "-c:a", "aac", str(out)],
        check=True, timeout=120,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, str]]:
    folder = tmp_path_factory.mktemp("tagged")
    for kvs in deploy(folder / "server"):
        yield kvs, kvs.upload(_tagged_file(folder), "tagged.m4a")


def _check_bounded(text: str) -> None:
    assert len(text.encode("utf-8")) <= MAX_METAINFO_BYTES
    doc = json.loads(text)
    tags = doc["format"]["tags"]
    assert len(tags) <= MAX_TAGS
    assert tags["comment"] == "c" * MAX_VALUE_BYTES
    title = tags["title"]
    assert TITLE.startswith(title) and len(title.encode()) <= MAX_VALUE_BYTES
    assert len(title.encode()) > MAX_VALUE_BYTES - 3  # cut, not dropped
    assert doc["streams"][0]["codec_name"] == "aac"  # the description itself is intact


def test_fetch_meta_info_of_a_huge_tag_is_bounded(tagged: tuple[Deployment, str]) -> None:
    kvs, src = tagged
    before = _rss_kib(kvs.server.pid)
    for _ in range(3):
        reply = kvs.client.fetch_meta_info(SrcPath=src)
        assert reply["ErrNum"] == 0, str(reply)[:300]
        _check_bounded(reply["MetaInfo"])
    grown = _rss_kib(kvs.server.pid) - before
    assert grown < 64 * 1024, f"server RSS grew by {grown} KiB"  # was +850 MB unbounded


def test_avinfo_of_a_huge_tag_is_stored_and_answered_bounded(
    tagged: tuple[Deployment, str],
) -> None:
    kvs, src = tagged
    assert kvs.client.preset(Preset="info", PresetType="avinfo", Param={})["ErrNum"] == 0
    reply = kvs.client.create_task(Preset="info", SrcInfo=[{"path": src}])
    assert reply["ErrNum"] == 0, reply
    info = kvs.wait_task(reply["TaskID"])
    assert info["TaskStatus"] == "succ", info
    meta = kvs.client.get_task_meta_info(TaskID=reply["TaskID"])
    assert meta["ErrNum"] == 0 and meta["Count"] == 1
    _check_bounded(meta["MetaList"][0]["MetaInfo"])
    assert meta["MetaList"][0]["MetaInfo"] == kvs.client.fetch_meta_info(SrcPath=src)["MetaInfo"]
    listed = kvs.client.get_task_meta_info()
    assert listed["ErrNum"] == 0 and listed["Count"] >= 1
    for item in listed["MetaList"]:
        _check_bounded(item["MetaInfo"])


def test_fetch_meta_info_over_its_limits_is_throttled(tmp_path: Path) -> None:
    """With the user's (or everyone's) places taken, FetchMetaInfo answers Throttling at
    once, before running ffprobe; with a place free it probes."""
    settings = load({}, data_dir=tmp_path, fetch_meta_limit=2, fetch_meta_user_limit=1)
    services, engine = open_services(settings)
    try:
        alice = services.users.ensure_user("alice")
        bob = services.users.ensure_user("bob")
        services.storage.create_bucket("media")
        services.buckets.create("media", alice.id)
        services.buckets.grant("media", bob.id, Grant.READ)
        services.storage.put_file(
            "media", "a.m4a", _tagged_file(tmp_path), acl="private", content_type="audio/mp4"
        )
        params = {"SrcPath": "/media/a.m4a"}
        slots = services.fetch_slots
        assert slots is not None
        with slots.slot(alice.id):
            with pytest.raises(Throttling, match="this user"):
                fetch_meta_info(services, alice, params)
            assert "MetaInfo" in fetch_meta_info(services, bob, params)
            with slots.slot(999), pytest.raises(Throttling, match="at most 2"):
                fetch_meta_info(services, bob, params)
        assert "MetaInfo" in fetch_meta_info(services, alice, params)
        assert slots.running == 0
    finally:
        engine.dispose()
