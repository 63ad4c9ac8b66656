"""ffmpeg children die with their worker: own process group, parent-death signal.

The children here write nothing (``-f null``, ``-nostats``, ``-v error``), so a broken
pipe would never stop them: only the kernel's parent-death signal or a group kill does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest
from tests.support.processes import children_of, naming, wait_for, wait_until_gone

from openkvs.engine import ffmpeg
from openkvs.errors import TaskError

pytestmark = pytest.mark.skipif(
    ffmpeg.parent_death_guard() is None, reason="needs setpriv (util-linux 2.33 or later)"
)


def _silent_ffmpeg(marker: str) -> list[str]:
    """An ffmpeg that runs for ten minutes in real time and writes nothing."""
    return [
        ffmpeg.FFMPEG, "-nostdin", "-nostats", "-v", "error", "-re",
        "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "600",
        "-metadata", f"comment={marker}", "-f", "null", "-",
    ]  # fmt: skip


def test_a_sigkilled_worker_leaves_no_ffmpeg_running() -> None:
    marker = f"openkvs-test-{uuid.uuid4().hex}"
    # A worker as the pool runs one: ffmpeg started from a thread that lives on.
    script = textwrap.dedent(
        """
        import sys, threading
        from openkvs.engine import ffmpeg
        worker = threading.Thread(target=ffmpeg.run, args=(sys.argv[1:],),
                                  kwargs={"timeout": 600})
        worker.start()
        worker.join()
        """
    )
    worker = subprocess.Popen([sys.executable, "-c", script, *_silent_ffmpeg(marker)])
    try:
        [child] = wait_for(lambda: children_of(worker.pid, "ffmpeg"))
        assert any(marker in word for word in child.argv)
        assert os.getpgid(child.pid) == child.pid  # it leads its own process group
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert wait_until_gone([child])
    assert naming(marker) == []


def test_a_kill_reaches_everything_the_child_started() -> None:
    marker = f"{600 + uuid.uuid4().int % 1000}.{os.getpid()}"
    # The grandchild keeps none of the pipes: only a group kill stops it.
    script = f"sleep {marker} </dev/null >/dev/null 2>&1 & wait"
    with pytest.raises(TaskError) as caught:
        ffmpeg.run(["sh", "-c", script], timeout=0.5)
    assert caught.value.code == 2038
    assert wait_until_gone(naming(marker))


def test_a_child_whose_parent_died_before_the_guard_was_armed_exits() -> None:
    # ``sh`` is started by this process; what it checks is that its parent is the pid given.
    check = ffmpeg._PARENT_CHECK
    ok = subprocess.run(["sh", "-c", check, str(os.getpid()), "true"], check=False)
    orphan = subprocess.run(["sh", "-c", check, "1", "true"], check=False)
    assert (ok.returncode, orphan.returncode) == (0, 125)


def test_popen_args_are_the_command_asked_for() -> None:
    proc = ffmpeg._popen([ffmpeg.FFPROBE, "-version"])
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        ffmpeg._kill(proc)
    assert proc.args == [ffmpeg.FFPROBE, "-version"]
    assert proc.returncode == 0 and out.startswith(b"ffprobe version")


def test_a_missing_program_is_2013() -> None:
    with pytest.raises(TaskError) as caught:
        ffmpeg.run([f"no-such-program-{uuid.uuid4().hex}"], timeout=5)
    assert caught.value.code == 2013
