"""Looking at the processes of this machine through ``/proc`` (Linux).

    children = children_of(server.pid, "ffmpeg")     # [Proc(pid, start, name, argv)]
    assert wait_until_gone(children)                   # each exited (or its pid reused)
    assert naming("in/long.mp3") == []                 # no live process names the file
    assert reading(bucket_file) == []                  # none has it open (links resolved)

Zombies (exited, not yet reaped) count as gone: they run nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Proc",
    "alive",
    "children_of",
    "naming",
    "read_proc",
    "reading",
    "wait_for",
    "wait_until_gone",
]

PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    pid: int
    start: int  # clock ticks after boot (stat field 22): pids are reused, (pid, start) not
    parent: int
    name: str  # the kernel's short name (comm): the program after exec
    argv: tuple[str, ...]


def read_proc(pid: int) -> Proc | None:
    """The live process ``pid``, or None when it does not exist or is a zombie."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        argv = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    words = tuple(w.decode("utf-8", "replace") for w in argv.split(b"\0") if w)
    return Proc(pid, int(fields[19]), int(fields[1]), name, words)


def _all() -> Iterable[Proc]:
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            proc = read_proc(int(entry.name))
            if proc is not None:
                yield proc


def children_of(parent: int, name: str | None = None) -> list[Proc]:
    """The live children of ``parent`` (only those called ``name``, if given)."""
    return [p for p in _all() if p.parent == parent and (name is None or p.name == name)]


def naming(text: str) -> list[Proc]:
    """Live processes with ``text`` inside one of their command-line words."""
    return [p for p in _all() if any(text in word for word in p.argv)]


def reading(path: Path) -> list[Proc]:
    """Live processes with ``path`` open. ffmpeg is handed a link to an object, not its
    path, so its command line never names the object; its open descriptors do."""
    target = str(path.resolve())
    found = []
    for proc in _all():
        try:
            fds = list((PROC / str(proc.pid) / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if str(fd.readlink()) == target:
                    found.append(proc)
                    break
            except OSError:
                continue
    return found


def alive(proc: Proc) -> bool:
    now = read_proc(proc.pid)
    return now is not None and now.start == proc.start


def wait_for(find: Callable[[], list[Proc]], timeout: float = 30.0) -> list[Proc]:
    """Call ``find()`` until it returns a non-empty list (or ``timeout`` s pass); returns it."""
    deadline = time.monotonic() + timeout
    while True:
        found = find()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def wait_until_gone(procs: Iterable[Proc], timeout: float = 30.0) -> bool:
    """Whether every process in ``procs`` has exited within ``timeout`` s.

    A SIGKILL is delivered at once but the process is torn down when next scheduled, so
    this waits instead of looking once.
    """
    procs = list(procs)
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in procs):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
