"""Running ffmpeg and ffprobe as child processes, and translating their failures.

Every child is bounded: :func:`run` has a deadline and an optional cancel event, and
:func:`stream` (many decoders read at once through pipes) polls its cancel event and deadline
while it reads. Children are always killed if still running and always reaped; their pipes
are always closed. Each child leads its own process group (a kill reaches all of it) and is
killed by the kernel when the thread that started it dies, so a crashed worker leaves no
ffmpeg running (:func:`_popen`).

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
import shutil
import signal
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
    # A source refused by engine/sandbox.py's -format_whitelist ("Format not on whitelist")
    # or -protocol_whitelist ("Protocol 'http' not on whitelist 'file'!").
    ("not on whitelist", 2037),
)
#: Codes that say little: any other known text in the output is a better explanation.
GENERIC_CODES = frozenset({3022, 3146, 3157})
#: Codes that explain every other line: a refused source (a nested open refused by the
#: protocol list makes the demuxer end with "Invalid data found" or the like).
DECISIVE_CODES = frozenset({2037})
_PATTERNS = [
    (re.compile(re.escape(text), re.IGNORECASE), len(text), code) for text, code in ERROR_TEXTS
]
UNKNOWN_FAILURE = 3175
KILLED_BY_SIGNAL = 3255


def error_from_stderr(stderr: str) -> TaskError:
    """The §6.2 error for a failed ffmpeg/ffprobe run, from its stderr text.

    Every line is searched. A refusal (:data:`DECISIVE_CODES`) beats everything, a specific
    text beats a generic one (:data:`GENERIC_CODES`:
    ffmpeg often ends with "Invalid argument" after naming the real problem); among equals
    the last line wins (ffmpeg ends with the error that stopped it), and within a line the
    longest text. Nothing known → 3175. ``detail`` is the deciding line.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    best: tuple[int, int, int, int] | None = None
    for number, line in enumerate(lines):
        for pattern, length, code in _PATTERNS:
            if pattern.search(line):
                rank = 2 if code in DECISIVE_CODES else int(code not in GENERIC_CODES)
                score = (rank, number, length, code)
                best = score if best is None or score > best else best
    if best is None:
        return TaskError(UNKNOWN_FAILURE, lines[-1][:500] if lines else "ffmpeg failed")
    return TaskError(best[3], lines[best[1]][:500])


def failure(returncode: int, stderr: str) -> TaskError:
    """The error for a child that exited with ``returncode`` (not killed by us)."""
    if returncode < 0:
        return TaskError(KILLED_BY_SIGNAL, f"ffmpeg killed by signal {-returncode}")
    return error_from_stderr(stderr)


#: Run by ``sh`` between ``setpriv`` and the program: exit if the process that started us
#: ($0) is no longer our parent, i.e. it died before the parent-death signal was armed.
_PARENT_CHECK = '[ "$PPID" = "$0" ] || exit 125; exec "$@"'


def _guard() -> list[str]:
    """The words put before a child's command so the kernel kills it with its parent."""
    setpriv = _setpriv()
    return [] if setpriv is None else _guard_words(setpriv)


def _guard_words(setpriv: str) -> list[str]:
    return [setpriv, "--pdeathsig", "KILL", "--", "/bin/sh", "-c", _PARENT_CHECK, str(os.getpid())]


@functools.cache
def _setpriv() -> str | None:
    """``setpriv`` (util-linux 2.33 or later) when it is here and arms a parent-death
    signal, else None (then children are not tied to this process's life)."""
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        done = subprocess.run(
            [*_guard_words(path), "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return path if done.returncode == 0 else None


def parent_death_guard() -> str | None:
    """The ``setpriv`` that ties children to this process, or None (for ``doctor``)."""
    return _setpriv()


def _popen(args: Sequence[str], *, bufsize: int = -1) -> subprocess.Popen[bytes]:
    """Start ``args`` with its pipes, in its own process group, tied to this process.

    - Own process group (``process_group=0``): :func:`_kill` signals the whole group, so
      anything the child started dies with it, and a Ctrl-C in a terminal reaches openkvs
      (which stops its tasks cleanly) instead of killing ffmpeg behind its back.
    - Parent-death signal: the child runs as ``setpriv --pdeathsig KILL -- sh -c CHECK PID
      program args...``; the kernel SIGKILLs it when its parent dies, even by SIGKILL.
      ``sh`` then checks that its parent is still this process (it may have died before
      the signal was armed: then the child exits at once) and execs the program, so the
      running child is the program itself with the same pid.

    Why not ``preexec_fn`` calling ``prctl(PR_SET_PDEATHSIG)``: Python documents it as
    unsafe with threads (the forked child can deadlock on a lock another thread held), and
    it forces a full ``fork()`` of this process instead of ``vfork()``: measured 22 ms
    instead of 1 ms per child for a 400 MB process. ``setpriv`` and ``sh`` add about 2 ms
    per child (ffprobe alone takes tens of milliseconds to start).

    The kernel's "parent" is the *thread* that started the child: the signal fires when
    that thread exits. Children are started and reaped by the same call (:func:`run`,
    :func:`stream`), so the thread always outlives them; worker threads live as long as
    their pool. Without a usable ``setpriv`` (not Linux, util-linux before 2.33) children
    run unguarded and ``openkvs doctor`` says so. The kernel also clears the signal when
    the program is set-user-ID or has file capabilities.

    ``Popen.args`` is ``args`` as asked, without the guard.
    """
    program = shutil.which(args[0])
    if program is None:
        raise TaskError(2013, f"cannot start {args[0]}: not found")
    try:
        proc = subprocess.Popen(
            [*_guard(), program, *args[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=bufsize,
            process_group=0,
        )
    except OSError as exc:  # binary not executable
        raise TaskError(2013, f"cannot start {args[0]}: {exc}") from exc
    proc.args = list(args)
    return proc


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a child and its process group (it leads one: see :func:`_popen`).

    Only while the child is not yet reaped: until then its pid, which is the group's id,
    cannot belong to anyone else.
    """
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether the child exits within ``timeout`` seconds (it is then reaped).

    Waits on a pidfd where the kernel has them (Linux 5.3+), which wakes the moment the child
    exits; ``Popen.wait(timeout)`` instead polls with growing sleeps and notices an exit
    about a millisecond late, a cost every probe and transcode paid.
    """
    if proc.poll() is not None:
        return True
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(max(0.0, timeout) * 1000)
    finally:
        os.close(fd)
    return proc.poll() is not None


def run(
    args: Sequence[str],
    *,
    timeout: float,
    cancel: threading.Event | None = None,
    timeout_code: int = 2038,
    max_output: int | None = None,
    output_code: int = 2010,
) -> bytes:
    """Run a command to completion and return its stdout.

    Exceeding ``timeout`` seconds → ``TaskError(timeout_code)``; ``cancel`` set → 2005;
    more than ``max_output`` bytes on stdout → ``TaskError(output_code)`` (nothing beyond is
    read: memory stays bounded whatever the child prints); a non-zero exit → :func:`failure`
    of the end of stderr (:data:`STDERR_TAIL`). The child is killed and reaped in every case.
    """
    deadline = time.monotonic() + timeout
    with _popen(args) as proc:
        output = _Output(proc)
        stop: TaskError | None = None
        while output.open and stop is None:
            output.read(max(0.0, min(POLL_INTERVAL, deadline - time.monotonic())))
            if max_output is not None and len(output.out) > max_output:
                stop = TaskError(output_code, f"{args[0]} printed more than {max_output} bytes")
            elif cancel is not None and cancel.is_set():
                stop = TaskError(2005, f"cancelled while running {args[0]}")
            elif time.monotonic() >= deadline:
                stop = TaskError(timeout_code, f"{args[0]} ran over {timeout:g} s")
        # Both pipes are at EOF: the child is exiting.
        if stop is None and not wait_exit(proc, max(0.1, deadline - time.monotonic())):
            stop = TaskError(timeout_code, f"{args[0]} ran over {timeout:g} s")
        if stop is not None:
            _kill(proc)
            proc.communicate()
            raise stop
    if proc.returncode != 0:
        raise failure(proc.returncode, output.err.decode("utf-8", "replace"))
    return bytes(output.out)


class _Output:
    """What one child prints: all of stdout, and the end of stderr (:data:`STDERR_TAIL`)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.out = bytearray()
        self.err = b""
        self._poller = select.poll()
        self._pipes = {proc.stdout.fileno(): True, proc.stderr.fileno(): False}
        for fd in self._pipes:
            self._poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)

    @property
    def open(self) -> bool:
        return bool(self._pipes)

    def read(self, wait: float) -> None:
        """Read what is available, waiting up to ``wait`` seconds for something."""
        for fd, _event in self._poller.poll(wait * 1000):
            data = os.read(fd, 1 << 16)
            if not data:
                self._poller.unregister(fd)
                del self._pipes[fd]
            elif self._pipes[fd]:
                self.out += data
            else:
                self.err = (self.err + data)[-STDERR_TAIL:]


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
        _kill(self.proc)
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
    if not wait_exit(reader.proc, wait):
        raise TaskError(2038, "ffmpeg did not exit after closing its output")
    code = reader.proc.returncode
    if code != 0:
        raise failure(code, reader.stderr_tail.decode("utf-8", "replace"))
