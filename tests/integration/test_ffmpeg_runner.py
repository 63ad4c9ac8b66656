"""engine/runner.py with real ffmpeg: progress, cancel, time limit, memory and output limits,
signals, failures with their stderr tail; engine/outinfo.py on real output files."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.media import make_video, probe

from openkvs.engine import ffmpeg
from openkvs.engine.outinfo import describe_output, packet_bytes
from openkvs.engine.runner import Limits, folder_bytes, rss_bytes, run_commands
from openkvs.errors import TaskError

#: A transcode that runs for many seconds on any machine (stopped long before it ends).
LONG_INPUT = ["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25:duration=600"]
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]


def _ffmpeg(*args: str) -> list[str]:
    return [ffmpeg.FFMPEG, "-v", "error", "-nostdin", "-y", *args]


def _long(out: Path) -> list[str]:
    return _ffmpeg(*LONG_INPUT, *X264, str(out))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of 640x360 H.264 + AAC."""
    return make_video(tmp_path_factory.mktemp("runner"), "clip", seconds=4, size="640x360")


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """The children the runner starts (through engine.ffmpeg's guarded start)."""
    found: list[subprocess.Popen[bytes]] = []
    real = ffmpeg._popen

    def spy(args: list[str], **kwargs: int) -> subprocess.Popen[bytes]:
        proc = real(args, **kwargs)
        found.append(proc)
        return proc

    monkeypatch.setattr(ffmpeg, "_popen", spy)
    return found


def _gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def later() -> Iterator[list[threading.Timer]]:
    timers: list[threading.Timer] = []
    yield timers
    for timer in timers:
        timer.cancel()


def _after(timers: list[threading.Timer], seconds: float, action: object) -> None:
    timer = threading.Timer(seconds, action)  # type: ignore[arg-type]
    timers.append(timer)
    timer.start()


def _when_running(started: list[subprocess.Popen[bytes]], action: object) -> object:
    """An action for a timer: wait until ffmpeg has started, then run ``action(proc)``."""

    def run() -> None:
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            time.sleep(0.01)
        action(started[-1])  # type: ignore[operator]

    return run


def test_two_commands_split_progress_and_insert_the_progress_options(
    clip: Path, tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    seen: list[float] = []
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    commands = [
        _ffmpeg("-i", str(clip), "-s", "320x180", *X264, "-an", str(first)),
        _ffmpeg("-i", str(clip), "-s", "160x90", *X264, "-an", str(second)),
    ]
    run_commands(commands, duration=4.0, deadline=time.monotonic() + 120, on_progress=seen.append)
    assert [proc.args for proc in started] == [
        [c[0], "-progress", "pipe:1", "-nostats", *c[1:]] for c in commands
    ]
    assert seen == sorted(seen) and seen[-1] == 100.0 and seen.count(100.0) == 1
    assert 50.0 in seen  # the first command's end
    assert all(0 <= p <= 50 for p in seen[: seen.index(50.0) + 1])
    for out, width in ((first, 320), (second, 160)):
        assert probe(out)["streams"][0]["width"] == width


def test_progress_moves_while_a_long_command_runs(tmp_path: Path) -> None:
    seen: list[tuple[float, float]] = []
    start = time.monotonic()
    command = _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=3", *X264,
        str(tmp_path / "o.mp4"),
    )  # fmt: skip
    run_commands(
        [command],
        duration=3.0,
        deadline=time.monotonic() + 120,
        on_progress=lambda p: seen.append((time.monotonic() - start, p)),
    )
    percents = [p for _, p in seen]
    assert percents[-1] == 100.0 and percents == sorted(percents)
    assert any(0 < p < 100 for p in percents), seen  # reported before the end


def test_cancel_kills_ffmpeg_at_once_and_says_2005(
    tmp_path: Path, started: list[subprocess.Popen[bytes]], later: list[threading.Timer]
) -> None:
    cancel = threading.Event()
    set_at: list[float] = []

    def stop(_proc: subprocess.Popen[bytes]) -> None:
        set_at.append(time.monotonic())
        cancel.set()

    _after(later, 1.0, _when_running(started, stop))
    with pytest.raises(TaskError) as info:
        run_commands(
            [_long(tmp_path / "o.mp4")],
            duration=600,
            deadline=time.monotonic() + 120,
            cancel=cancel,
        )
    stopped = time.monotonic()
    assert info.value.code == 2005
    [proc] = started
    assert proc.returncode == -signal.SIGKILL and _gone(proc.pid)
    # Killed and reaped well within the bound the API promises (2 s).
    assert stopped - set_at[0] < 0.5


def test_the_deadline_is_2038(tmp_path: Path, started: list[subprocess.Popen[bytes]]) -> None:
    start = time.monotonic()
    with pytest.raises(TaskError) as info:
        run_commands([_long(tmp_path / "o.mp4")], duration=600, deadline=start + 1.0)
    assert info.value.code == 2038
    assert time.monotonic() - start < 1.5
    # The operator's log says why ffmpeg stopped (its own output cannot).
    assert info.value.log.endswith("openkvs: the task ran over its time limit while ffmpeg ran\n")
    assert _gone(started[0].pid)


def test_memory_over_the_limit_is_2002(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    # A 1080p x264 encoder holds well over 30 MiB (its lookahead alone).
    with pytest.raises(TaskError) as info:
        run_commands(
            [_long(tmp_path / "o.mp4")],
            duration=600,
            deadline=time.monotonic() + 60,
            limits=Limits(max_rss_mb=30),
        )
    assert info.value.code == 2002 and "over the 30 MiB limit" in info.value.detail
    assert _gone(started[0].pid)


def test_memory_under_the_limit_is_fine(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    command = _ffmpeg("-i", str(clip), "-c", "copy", str(out))
    run_commands([command], duration=4, deadline=time.monotonic() + 60, limits=Limits(1024, 1024))
    assert out.stat().st_size > 0


def test_output_over_the_limit_while_running_is_2010(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # Raw video: about 3 MiB per 1080p frame, so 1 MiB is passed at once.
    command = _ffmpeg(*LONG_INPUT, "-f", "rawvideo", str(scratch / "o.yuv"))
    with pytest.raises(TaskError) as info:
        run_commands(
            [command],
            duration=600,
            deadline=time.monotonic() + 60,
            folder=scratch,
            limits=Limits(max_output_mb=1),
        )
    assert info.value.code == 2010 and "over the 1 MiB limit" in info.value.detail
    assert _gone(started[0].pid)


def test_output_over_the_limit_at_the_end_is_2010(clip: Path, tmp_path: Path) -> None:
    # Finishes faster than the runner looks: the size is checked again after the exit.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "earlier-pass.log").write_bytes(b"x" * (1024 * 1024))
    command = _ffmpeg("-i", str(clip), "-c", "copy", str(scratch / "o.mp4"))
    with pytest.raises(TaskError) as info:
        run_commands(
            [command],
            duration=4,
            deadline=time.monotonic() + 60,
            folder=scratch,
            limits=Limits(max_output_mb=1),
        )
    assert info.value.code == 2010


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM])
def test_killed_by_a_signal_that_is_not_ours_is_3255(
    tmp_path: Path,
    started: list[subprocess.Popen[bytes]],
    later: list[threading.Timer],
    signum: signal.Signals,
) -> None:
    # SIGTERM is caught by ffmpeg, which stops and exits with 255.
    _after(later, 0.8, _when_running(started, lambda proc: os.kill(proc.pid, signum)))
    with pytest.raises(TaskError) as info:
        run_commands([_long(tmp_path / "o.mp4")], duration=600, deadline=time.monotonic() + 60)
    assert info.value.code == 3255
    assert info.value.log.rstrip().endswith(
        f"openkvs: ffmpeg killed by {signum.name}"
        if signum != signal.SIGTERM
        else "openkvs: ffmpeg stopped after catching a signal (exit status 255)"
    )
    assert (
        info.value.message
        == "Trans Internal Error: System Signal is caught and Slave proces is killed"
    )


def test_a_failure_is_mapped_from_stderr_and_keeps_its_tail(tmp_path: Path, clip: Path) -> None:
    with pytest.raises(TaskError) as info:
        run_commands(
            [_ffmpeg("-i", str(tmp_path / "missing.mp4"), str(tmp_path / "o.mp4"))],
            duration=4,
            deadline=time.monotonic() + 60,
        )
    assert info.value.code == 2041
    assert "missing.mp4: No such file or directory" in info.value.log
    with pytest.raises(TaskError) as info:
        run_commands(
            [_ffmpeg("-i", str(clip), "-c:v", "no-such-encoder", str(tmp_path / "o.mp4"))],
            duration=4,
            deadline=time.monotonic() + 60,
        )
    assert info.value.code == 3145 and "Unknown encoder" in info.value.log


def test_only_the_end_of_a_long_stderr_is_kept(tmp_path: Path) -> None:
    # An mp4 cut in the middle, decoded with -xerror at trace level: over 32 KiB of stderr,
    # ending with the failure.
    source = make_video(tmp_path, "whole", seconds=4, audio=False)
    data = source.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    command = [
        ffmpeg.FFMPEG,
        "-v",
        "trace",
        "-debug_ts",
        "-xerror",
        "-i",
        str(cut),
        "-f",
        "null",
        "-",
    ]
    everything = subprocess.run(command, capture_output=True, timeout=60, check=False).stderr
    assert len(everything) > 2 * ffmpeg.STDERR_TAIL
    with pytest.raises(TaskError) as info:
        run_commands([command], duration=4, deadline=time.monotonic() + 60)
    log = info.value.log
    assert 0 < len(log.encode()) <= ffmpeg.STDERR_TAIL
    assert log.rstrip().endswith("Conversion failed!")


def test_a_failing_progress_callback_still_stops_ffmpeg(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    def boom(_percent: float) -> None:
        raise RuntimeError("reporter broke")

    command = _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=600", *X264,
        str(tmp_path / "o.mp4"),
    )  # fmt: skip
    with pytest.raises(RuntimeError):
        run_commands([command], duration=1.0, deadline=time.monotonic() + 60, on_progress=boom)
    assert _gone(started[0].pid)


def test_rss_and_folder_measures(tmp_path: Path) -> None:
    me = rss_bytes(os.getpid())
    assert me is not None and me > 1024 * 1024
    assert rss_bytes(2**22 + 12345) is None
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "d" / "e" / "b").write_bytes(b"y" * 24)
    (tmp_path / "link").symlink_to("/etc/passwd")
    assert folder_bytes(tmp_path) == 1024
    assert folder_bytes(tmp_path / "nothing") == 0


def test_describe_output_measures_streams_the_container_does_not_record(
    clip: Path, tmp_path: Path
) -> None:
    mkv = tmp_path / "o.mkv"
    subprocess.run(_ffmpeg("-i", str(clip), "-c", "copy", str(mkv)), check=True, timeout=60)
    from_mp4 = describe_output(str(clip), timeout=60)
    from_mkv = describe_output(str(mkv), timeout=60)
    assert from_mp4["format"]["format_name"] == "mp4"
    assert from_mkv["format"]["format_name"] == "matroska"
    # The same packets: the measured rates match the ones mp4 records, within the
    # difference of the two containers' durations.
    for a, b in zip(from_mp4["streams"], from_mkv["streams"], strict=True):
        assert b["bit_rate"] == pytest.approx(a["bit_rate"], rel=0.05)
    sizes = packet_bytes(str(mkv), timeout=60)
    assert set(sizes) == {0, 1} and all(v > 0 for v in sizes.values())
