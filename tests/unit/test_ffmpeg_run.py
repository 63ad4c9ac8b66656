"""engine/ffmpeg.py ``run``: bounded output, stderr tail, deadline (real child processes)."""

from __future__ import annotations

import sys

import pytest

from openkvs.engine import ffmpeg
from openkvs.errors import TaskError


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_stdout_is_returned() -> None:
    assert ffmpeg.run(_python("print('x' * 100000)"), timeout=60) == b"x" * 100000 + b"\n"


def test_more_output_than_allowed_stops_the_child() -> None:
    endless = "import sys\nwhile True: sys.stdout.write('y' * 65536)"
    with pytest.raises(TaskError) as info:
        ffmpeg.run(_python(endless), timeout=60, max_output=1 << 20, output_code=2010)
    assert info.value.code == 2010 and "more than 1048576 bytes" in info.value.detail


def test_a_failure_is_read_from_the_end_of_stderr() -> None:
    noisy = (
        "import sys\nsys.stderr.write('noise\\n' * 200000)\n"
        "sys.stderr.write('Invalid data found when processing input\\n')\nsys.exit(1)"
    )
    with pytest.raises(TaskError) as info:
        ffmpeg.run(_python(noisy), timeout=60)
    assert info.value.code == 3150


def test_the_deadline_still_holds_while_output_is_read() -> None:
    slow = "import sys, time\nwhile True:\n    print('z', flush=True)\n    time.sleep(0.01)"
    with pytest.raises(TaskError) as info:
        ffmpeg.run(_python(slow), timeout=0.5, timeout_code=3187, max_output=1 << 20)
    assert info.value.code == 3187


def test_wait_exit_reaps_a_child_that_exits_and_waits_out_one_that_does_not() -> None:
    quick = ffmpeg._popen(_python("import sys; sys.exit(3)"))
    slow = ffmpeg._popen(_python("import time; time.sleep(30)"))
    try:
        assert ffmpeg.wait_exit(quick, 30) and quick.returncode == 3
        assert not ffmpeg.wait_exit(slow, 0.1) and slow.returncode is None
    finally:
        for proc in (quick, slow):
            ffmpeg._kill(proc)
            proc.communicate()
