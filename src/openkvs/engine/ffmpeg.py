"""Running ffmpeg and ffprobe as child processes, and translating their failures.

Every child is bounded: :func:`run` has a deadline and an optional cancel event, and
:func:`stream` (many decoders read at once through pipes) polls its cancel event and deadline
while it reads. Children are always killed if still running and always reaped; their pipes
are always closed.

FFmpeg reports a failure as an ``av_err2str`` text at the end of its stderr;
:func:`error_from_stderr` maps that text to a spec §6.2 code.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import select
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from openkvs.errors import TaskError

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"

#: How often a waiting loop looks at its cancel event and deadline (seconds).
POLL_INTERVAL = 0.05
#: How much of a child's stderr is kept (its end: that is where ffmpeg says why it failed).
STDERR_TAIL = 32 * 1024

#: ``av_err2str`` texts (and the few system texts ffmpeg prints) → spec §6.2 codes.
ERROR_TEXTS: tuple[tuple[str, int], ...] = (
    ("Bitstream filter not found", 3140),
    ("Internal bug, should not have happened", 3141),
    ("Buffer too small", 3142),
    ("Decoder not found", 3143),
    ("Demuxer not found", 3144),
    ("Encoder not found", 3145),
    ("End of file", 3146),
    ("Immediate exit requested", 3147),
    ("Generic error in an external library", 3148),
    ("Filter not found", 3149),
    ("Invalid data found when processing input", 3150),
    ("Muxer not found", 3151),
    ("Option not found", 3152),
    ("Not yet implemented in FFmpeg, patches welcome", 3153),
    ("Protocol not found", 3154),
    ("Stream not found", 3155),
    ("Bug detected, please report the issue", 3156),
    ("Unknown error occurred", 3157),
    ("Experimental feature", 3158),
    ("Input changed", 3159),
    ("Output changed", 3160),
    ("Server returned 400 Bad Request", 3161),
    ("401 Unauthorized", 3162),
    ("403 Forbidden", 3163),
    ("404 Not Found", 3164),
    ("Server returned 4XX Client Error", 3165),
    ("Server returned 5XX Server Error", 3166),
    ("Invalid argument", 3022),
    ("Connection timed out", 3240),
    ("Connection reset by peer", 3241),
    ("Connection refused", 3242),
    # ENOENT is a missing local file, not an HTTP 404.
    ("No such file or directory", 2041),
    # The ffmpeg command line's own words for the same failures (fftools, 5.1); the error code
    # it then prints is often only a generic "Invalid argument".
    ("Unknown decoder", 3143),
    ("Unknown encoder", 3145),
    ("Unknown input format", 3144),
    ("No such filter", 3149),
    ("is not a suitable output format", 3151),
    ("matches no streams", 3155),
    ("Unrecognized option", 3152),
    ("could not find codec parameters", 3150),  # the input could not be parsed
)
#: Codes that say little: any other known text in the output is a better explanation.
GENERIC_CODES = frozenset({3022, 3146, 3157})
_PATTERNS = [
    (re.compile(re.escape(text), re.IGNORECASE), len(text), code) for text, code in ERROR_TEXTS
]
UNKNOWN_FAILURE = 3175
KILLED_BY_SIGNAL = 3255


def error_from_stderr(stderr: str) -> TaskError:
    """The §6.2 error for a failed ffmpeg/ffprobe run, from its stderr text.

    Every line is searched. A specific text beats a generic one (:data:`GENERIC_CODES`:
    ffmpeg often ends with "Invalid argument" after naming the real problem); among equals
    the last line wins (ffmpeg ends with the error that stopped it), and within a line the
    longest text. Nothing known → 3175. ``detail`` is the deciding line.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    best: tuple[bool, int, int, int] | None = None
    for number, line in enumerate(lines):
        for pattern, length, code in _PATTERNS:
            if pattern.search(line):
                score = (code not in GENERIC_CODES, number, length, code)
                best = score if best is None or score > best else best
    if best is None:
        return TaskError(UNKNOWN_FAILURE, lines[-1][:500] if lines else "ffmpeg failed")
    return TaskError(best[3], lines[best[1]][:500])


def failure(returncode: int, stderr: str) -> TaskError:
    """The error for a child that exited with ``returncode`` (not killed by us)."""
    if returncode < 0:
        return TaskError(KILLED_BY_SIGNAL, f"ffmpeg killed by signal {-returncode}")
    return error_from_stderr(stderr)


def _popen(args: Sequence[str], *, bufsize: int = -1) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=bufsize,
        )
    except OSError as exc:  # binary missing or not executable
        raise TaskError(2013, f"cannot start {args[0]}: {exc}") from exc


def run(
    args: Sequence[str],
    *,
    timeout: float,
    cancel: threading.Event | None = None,
    timeout_code: int = 2038,
) -> bytes:
    """Run a command to completion and return its stdout.

    Exceeding ``timeout`` seconds → ``TaskError(timeout_code)``; ``cancel`` set → 2005;
    a non-zero exit → :func:`failure`. The child is killed and reaped in every case.
    """
    deadline = time.monotonic() + timeout
    with _popen(args) as proc:
        while True:
            remaining = deadline - time.monotonic()
            try:
                out, err = proc.communicate(timeout=max(0.0, min(POLL_INTERVAL, remaining)))
                break
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    proc.kill()
                    proc.communicate()
                    raise TaskError(2005, f"cancelled while running {args[0]}") from None
                if time.monotonic() >= deadline:
                    proc.kill()
                    proc.communicate()
                    raise TaskError(timeout_code, f"{args[0]} ran over {timeout:g} s") from None
    if proc.returncode != 0:
        raise failure(proc.returncode, err.decode("utf-8", "replace"))
    return out


class _Reader:
    """One streaming child: stdout into a preallocated buffer, stderr kept as a tail."""

    def __init__(self, args: Sequence[str], chunk_bytes: int, frame_bytes: int) -> None:
        self.proc = _popen(args, bufsize=0)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out, self.err = self.proc.stdout, self.proc.stderr
        with contextlib.suppress(OSError):  # a bigger pipe means fewer wake-ups; optional
            fcntl.fcntl(self.out.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        self.buffer = bytearray(chunk_bytes)
        self.view = memoryview(self.buffer)
        self.fill = 0
        self.frame_bytes = frame_bytes
        self.stderr_tail = b""
        self.out_open = self.err_open = True

    def read_stdout(self, consume: Callable[[memoryview], None]) -> None:
        n = os.readv(self.out.fileno(), [self.view[self.fill :]])
        self.fill += n
        if n == 0:
            self.out_open = False
        if self.fill >= len(self.buffer) // 2 or (not self.out_open and self.fill):
            usable = self.fill - self.fill % self.frame_bytes
            if usable:
                consume(self.view[:usable])
            rest = self.fill - usable
            self.view[:rest] = self.view[usable : self.fill]
            self.fill = rest

    def read_stderr(self) -> None:
        data = os.read(self.err.fileno(), 65536)
        if not data:
            self.err_open = False
        self.stderr_tail = (self.stderr_tail + data)[-STDERR_TAIL:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        # No view.release(): a consumer's array may still be alive in a traceback.
        self.out.close()
        self.err.close()
        self.proc.wait()


def stream(
    commands: Sequence[Sequence[str]],
    consume: Callable[[int, memoryview], None],
    *,
    chunk_bytes: int = 1 << 20,
    frame_bytes: int = 1,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
) -> None:
    """Run the commands at once and hand their stdout to ``consume(command_index, data)``.

    Each child's output goes through its own preallocated ``chunk_bytes`` buffer and is handed
    over in pieces of whole ``frame_bytes`` frames, so memory does not grow with the output.
    ``cancel`` set → every child killed, ``TaskError(2005)``; past ``timeout`` seconds → 2038;
    a child that fails → the others killed, :func:`failure` of the first one. All children
    are reaped before this returns or raises.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    readers: list[_Reader] = []
    try:
        for args in commands:
            readers.append(_Reader(args, chunk_bytes, frame_bytes))
        poller = select.poll()
        by_fd: dict[int, tuple[int, _Reader, bool]] = {}
        for index, reader in enumerate(readers):
            for is_out, f in ((True, reader.out), (False, reader.err)):
                poller.register(f.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
                by_fd[f.fileno()] = (index, reader, is_out)
        while by_fd:
            if cancel is not None and cancel.is_set():
                raise TaskError(2005, "cancelled while decoding")
            if deadline is not None and time.monotonic() >= deadline:
                raise TaskError(2038, f"decoding ran over {timeout:g} s")
            for fd, _event in poller.poll(POLL_INTERVAL * 1000):
                index, reader, is_out = by_fd[fd]
                if is_out:
                    reader.read_stdout(functools.partial(consume, index))
                    still_open = reader.out_open
                else:
                    reader.read_stderr()
                    still_open = reader.err_open
                if not still_open:
                    poller.unregister(fd)
                    del by_fd[fd]
                    if not reader.out_open and not reader.err_open:
                        _check_exit(reader, deadline)
    finally:
        for reader in readers:
            reader.close()


def _check_exit(reader: _Reader, deadline: float | None) -> None:
    """Both pipes are at EOF: the child is exiting; wait for it and raise if it failed."""
    wait = 10.0 if deadline is None else max(0.1, deadline - time.monotonic())
    try:
        code = reader.proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        raise TaskError(2038, "ffmpeg did not exit after closing its output") from None
    if code != 0:
        raise failure(code, reader.stderr_tail.decode("utf-8", "replace"))
