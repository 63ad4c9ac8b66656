"""``OPENKVS_API_PROCESSES``: several API processes on one port, the workers in the first."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.conftest import Deployment, deploy
from tests.support.kvs_client import close_kvs_client, make_kvs_client
from tests.support.media import make_audio

# Workers that never poll: a task queued through the second process starts only because
# that process tells the first one (the wake pipe).
ENV = {"OPENKVS_API_PROCESSES": "2", "OPENKVS_POLL_SECONDS": "3600"}


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Deployment]:
    yield from deploy(tmp_path / "data", ENV)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                found.append(int(entry))
    return found


def _api_process(server_pid: int) -> int:
    pythons = [
        pid
        for pid in _children(server_pid)
        if "python" in os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    ]
    assert len(pythons) == 1, pythons
    return pythons[0]


def _established(pid: int, port: int) -> int:
    """Established TCP connections on ``port`` whose socket ``pid`` holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 30  # a guard against hanging, not a speed target
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_a_task_queued_through_the_second_process_runs(two: Deployment, tmp_path: Path) -> None:
    child = _api_process(two.server.pid)
    source = two.upload(make_audio(tmp_path, "p", fmt="mp3", seconds=1), "in/p.mp3")
    clients = []
    try:
        # New connections until one is held by the second process (keep-alive keeps it).
        on_child = None
        while on_child is None and len(clients) < 60:
            client = make_kvs_client(two.server.url, two.access_key, two.secret_key)
            clients.append(client)
            before = _established(child, two.server.port)
            assert client.get_task_list()["ErrNum"] == 0
            if _established(child, two.server.port) > before:
                on_child = client
        assert on_child is not None, "the second process accepted no connection"
        reply = on_child.create_wave_task(
            Preset="wave",
            SrcInfo=[{"path": source}],
            DstBucket="media",
            DstObjectKey="out/p.json",
            points=10,
        )
        assert reply["ErrNum"] == 0, reply
        # The only task: the workers (which never poll here) start it because the second
        # process told the first one.
        assert two.wait_task(reply["TaskID"])["TaskStatus"] == "succ"
    finally:
        for client in clients:
            close_kvs_client(client)


def test_the_api_processes_stop_with_serve(two: Deployment) -> None:
    child = _api_process(two.server.pid)
    assert two.client.get_task_list()["ErrNum"] == 0
    two.server.stop()
    assert _gone(child)
    two.server.start()  # the fixture stops it again


def test_the_api_processes_die_when_serve_is_killed(two: Deployment) -> None:
    child = _api_process(two.server.pid)
    two.server.kill9()
    assert _gone(child)
    two.server.start()
