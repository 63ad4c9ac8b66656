"""Running the ffmpeg commands of one task: progress, cancel, time limit, resource limits.

:func:`run_commands` runs a task's commands one after the other (a two-pass encode is two
commands), each through ``engine.ffmpeg``'s guarded start (own process group, killed with
the worker), with ``-progress pipe:1 -nostats`` put after the program name. While a command
runs, its stdout is read line by line into :class:`~openkvs.engine.progress.ProgressParser`
and only the end of its stderr is kept (``engine.ffmpeg.STDERR_TAIL``): memory does not grow
with what ffmpeg prints. Every :data:`POLL_INTERVAL` the loop looks at:

- the cancel event → the process group is killed, ``TaskError(2005)``;
- the deadline → killed, 2038 ("operation time out");
- the resident memory of ffmpeg (``VmRSS`` of ``/proc/<pid>/status``, every
  :data:`CHECK_INTERVAL`) against :attr:`Limits.max_rss_mb` → killed, 2002 ("machine reach
  max rss");
- the bytes in the task's scratch folder (every :data:`CHECK_INTERVAL`) against
  :attr:`Limits.max_output_mb` → killed, 2010.

Memory is watched by polling, not bounded with ``setrlimit``. ``RLIMIT_AS`` limits address
space, not memory: ffmpeg and its libraries reserve far more address space than they touch
(thread stacks, x264's lookahead, hardware-decoder mappings), so a limit low enough to
matter makes allocations fail at unpredictable places, and ffmpeg then reports whatever the
failing call said (often "Cannot allocate memory" as a generic 3xxx code, or a crash: 3255)
instead of the limit. ``RLIMIT_RSS`` is ignored by Linux. Polling measures what the limit
is meant to bound, and fails with the code that says so; the price is that a process may go
over the limit for up to :data:`CHECK_INTERVAL` before it is killed.

The output limit uses 2010 ("String length illegal"): §6.2 has no code for "too much
output", and 2010 is the code openkvs already gives any output over a size bound (an
ffprobe whose description runs over its limit).

A command that exits by itself with a failure: killed by a signal that was not ours (the
kernel's OOM killer, an operator's ``kill``) or exit status 255, which is how ffmpeg ends
after catching SIGTERM, SIGINT, SIGQUIT or SIGXCPU → 3255; any other non-zero status →
``engine.ffmpeg.error_from_stderr`` of the stderr tail (its 3xxx code by FFmpeg's own error
text). Every error raised while or after a command ran carries that tail as ``log``; when
openkvs stopped the command, or a signal did, the log ends with a line saying so
(``openkvs: ffmpeg killed by SIGKILL``).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from openkvs.engine import ffmpeg
from openkvs.engine.progress import ProgressParser
from openkvs.errors import TaskError

#: How often the loop looks at cancel and the deadline (seconds): a cancelled ffmpeg is
#: killed within about this long.
POLL_INTERVAL = 0.05
#: How often resident memory and the scratch folder's size are measured (seconds).
CHECK_INTERVAL = 0.2
#: A stdout line longer than this is not progress output; it is dropped.
MAX_LINE = 64 * 1024
#: The exit status of an ffmpeg that caught a terminating signal and stopped.
CAUGHT_SIGNAL_STATUS = 255

#: ``on_progress(percent)``: 0-100 over all the commands, never decreasing.
ProgressCallback = Callable[[float], None]


@dataclass(frozen=True)
class Limits:
    """Bounds on one task's ffmpeg runs; 0 means no limit."""

    max_rss_mb: int = 0  # resident memory of one ffmpeg process, MiB → 2002
    max_output_mb: int = 0  # bytes in the task's scratch folder, MiB → 2010

    @property
    def max_rss_bytes(self) -> int:
        return self.max_rss_mb * 1024 * 1024

    @property
    def max_output_bytes(self) -> int:
        return self.max_output_mb * 1024 * 1024


def with_progress(command: Sequence[str]) -> list[str]:
    """``command`` with ``-progress pipe:1 -nostats`` after the program name."""
    return [command[0], "-progress", "pipe:1", "-nostats", *command[1:]]


def run_commands(
    commands: Sequence[Sequence[str]],
    *,
    duration: float,
    deadline: float,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    folder: Path | None = None,
    limits: Limits = Limits(),
) -> None:
    """Run ``commands`` in order; progress is split evenly across them.

    ``duration``: seconds of media each command writes (progress is measured on it; 0 when
    unknown: then progress moves only as commands end). ``deadline``: ``time.monotonic()``
    by which all must end. ``folder``: the task's scratch folder, whose total size is held to
    ``limits.max_output_mb``. Raises :class:`TaskError` as described in the module; the
    running command is killed and reaped before anything is raised.
    """
    count = len(commands)
    for number, command in enumerate(commands):

        def part(percent: float, number: int = number) -> None:
            if on_progress is not None:
                on_progress((number + percent / 100.0) * 100.0 / count)

        run_command(
            command,
            duration=duration,
            deadline=deadline,
            cancel=cancel,
            on_progress=part,
            folder=folder,
            limits=limits,
        )


def run_command(
    command: Sequence[str],
    *,
    duration: float,
    deadline: float,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    folder: Path | None = None,
    limits: Limits = Limits(),
) -> None:
    """Run one ffmpeg command (see :func:`run_commands`); ``on_progress`` gets 0-100 of it,
    100 once it has exited successfully."""
    parser = ProgressParser(duration)
    proc = ffmpeg._popen(with_progress(command), bufsize=0)
    watch = _Watch(proc)
    try:
        stop = _supervise(proc, watch, parser, deadline, cancel, on_progress, folder, limits)
    finally:
        ffmpeg._kill(proc)  # nothing if it has exited: it is only still running on a stop
        watch.close()
        proc.wait()
    tail = watch.stderr_text()
    if stop is not None:
        raise _with_log(stop, tail)
    code = proc.returncode
    if code < 0:
        killed = TaskError(ffmpeg.KILLED_BY_SIGNAL, f"ffmpeg killed by {_signal_name(-code)}")
        raise _with_log(killed, tail)
    if code == CAUGHT_SIGNAL_STATUS:
        caught = TaskError(
            ffmpeg.KILLED_BY_SIGNAL, "ffmpeg stopped after catching a signal (exit status 255)"
        )
        raise _with_log(caught, tail)
    if code != 0:
        error = ffmpeg.error_from_stderr(tail)
        error.log = tail
        raise error
    # What the last look missed (a muxer writes its index at the end; +faststart then
    # rewrites the whole file): the limit holds for what ffmpeg left, not only while it ran.
    stop = _over_limits(0, folder, Limits(max_output_mb=limits.max_output_mb))
    if stop is not None:
        raise _with_log(stop, tail)
    if on_progress is not None and not parser.ended:
        on_progress(100.0)


def _supervise(
    proc: subprocess.Popen[bytes],
    watch: _Watch,
    parser: ProgressParser,
    deadline: float,
    cancel: threading.Event | None,
    on_progress: ProgressCallback | None,
    folder: Path | None,
    limits: Limits,
) -> TaskError | None:
    """Read the child until it exits or must be stopped; the error to stop it with, or None
    once it has exited by itself."""
    next_check = 0.0
    while True:
        for line in watch.read(POLL_INTERVAL):
            percent = parser.feed(line)
            if percent is not None and on_progress is not None:
                on_progress(percent)
        if cancel is not None and cancel.is_set():
            return TaskError(2005, "cancelled while ffmpeg ran")
        now = time.monotonic()
        if now >= deadline:
            return TaskError(2038, "the task ran over its time limit while ffmpeg ran")
        if now >= next_check:
            next_check = now + CHECK_INTERVAL
            stop = _over_limits(proc.pid, folder, limits)
            if stop is not None:
                return stop
        # Both pipes at EOF: ffmpeg is exiting.
        if not watch.open and ffmpeg.wait_exit(proc, POLL_INTERVAL):
            return None


def _with_log(error: TaskError, tail: str) -> TaskError:
    """``error`` with ffmpeg's stderr tail as its log, ending with why openkvs stopped it
    (ffmpeg's output cannot say: it was killed, or had not failed by itself)."""
    error.log = f"{tail.rstrip()}\nopenkvs: {error.detail}\n".lstrip()
    return error


def _over_limits(pid: int, folder: Path | None, limits: Limits) -> TaskError | None:
    if limits.max_rss_mb:
        rss = rss_bytes(pid)
        if rss is not None and rss > limits.max_rss_bytes:
            return TaskError(
                2002,
                f"ffmpeg used {rss / (1024 * 1024):.1f} MiB of memory, over the "
                f"{limits.max_rss_mb} MiB limit",
            )
    if limits.max_output_mb and folder is not None:
        size = folder_bytes(folder)
        if size > limits.max_output_bytes:
            return TaskError(
                2010,
                f"the task wrote {size / (1024 * 1024):.1f} MiB, over the "
                f"{limits.max_output_mb} MiB limit",
            )
    return None


def rss_bytes(pid: int) -> int | None:
    """Resident memory of process ``pid`` (``VmRSS``), or None when it cannot be read (no
    ``/proc``, the process has exited or is a zombie)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024  # always in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def folder_bytes(folder: Path) -> int:
    """Total size of the regular files under ``folder`` (links are not followed); files
    that vanish while it is walked count for nothing."""
    total = 0
    pending = [str(folder)]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    return total


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Watch:
    """One child's pipes: stdout split into lines, the end of stderr kept."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self._out, self._err = proc.stdout, proc.stderr
        self._pending = b""
        self._stderr = b""
        self._poller = select.poll()
        self._open = {self._out.fileno(): True, self._err.fileno(): False}
        for fd in self._open:
            self._poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)

    @property
    def open(self) -> bool:
        return bool(self._open)

    def read(self, wait: float) -> list[str]:
        """The complete stdout lines that arrived within ``wait`` seconds."""
        if not self._open:
            return []
        lines: list[str] = []
        for fd, _event in self._poller.poll(wait * 1000):
            data = os.read(fd, 1 << 16)
            if not data:
                self._poller.unregister(fd)
                del self._open[fd]
                if self._pending and fd == self._out.fileno():
                    lines.append(self._pending.decode("utf-8", "replace"))
                    self._pending = b""
            elif self._open[fd]:
                *complete, self._pending = (self._pending + data).split(b"\n")
                if len(self._pending) > MAX_LINE:
                    self._pending = b""
                lines.extend(line.decode("utf-8", "replace") for line in complete)
            else:
                self._stderr = (self._stderr + data)[-ffmpeg.STDERR_TAIL :]
        return lines

    def stderr_text(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    def close(self) -> None:
        self._out.close()
        self._err.close()
