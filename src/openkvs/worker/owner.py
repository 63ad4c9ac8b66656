"""Lease owners: which process holds a task, and whether that process is gone.

A worker thread claims a task under an owner string
``host:machine:pid:start:nonce:thread`` (see :meth:`ProcessIdentity.owner`):

- ``host``: the host name (up to 48 characters), for people reading the tasks table;
- ``machine``: 12 hex digits hashed from the kernel's boot id and the process's PID
  namespace. Two processes may compare their pids only when this matches: the same host
  name on another machine, a container with its own PID namespace, or the same machine
  after a reboot all give another value;
- ``pid`` and ``start``: the process id and its start time in clock ticks after boot
  (``/proc/<pid>/stat`` field 22). A pid alone can be reused by an unrelated process; a pid
  *and* its start time cannot, within one boot;
- ``nonce``: six hex digits per pool, so two pools in one process never share an owner;
- ``thread``: the worker thread's name.

:func:`owner_gone` answers "has the process that holds this lease exited?" for owners of
this machine only, and only when it can tell for sure: an owner it cannot read (another
machine, an older format, a process it may not inspect) is *not* gone, and its tasks wait
for their lease to run out as before. Without ``/proc`` (not Linux) the check is off.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
HOST_CHARS = 48


@dataclass(frozen=True)
class ProcessIdentity:
    """Who a process is, precisely enough to tell later whether it has exited."""

    host: str  # the host name, shortened, without ":"
    machine: str  # boot id + PID namespace, hashed; "" when unknown (then never checked)
    pid: int
    start: int  # clock ticks after boot when the process started; 0 when unknown

    @classmethod
    def current(cls) -> ProcessIdentity:
        """This process. ``machine`` is "" where ``/proc`` cannot tell (not Linux)."""
        host = socket.gethostname().replace(":", "-")[:HOST_CHARS] or "localhost"
        pid = os.getpid()
        try:
            boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
            namespace = os.readlink(PROC / "self/ns/pid")
            start = _stat(PROC / "self/stat")[1]
        except (OSError, ValueError, IndexError):
            return cls(host, "", pid, 0)
        machine = hashlib.blake2s(f"{boot}|{namespace}".encode(), digest_size=6).hexdigest()
        return cls(host, machine, pid, start)

    @property
    def checkable(self) -> bool:
        """Whether other processes of this machine can be checked (see :func:`owner_gone`)."""
        return bool(self.machine)

    @property
    def machine_prefix(self) -> str:
        """The start of every owner string of a process on this machine."""
        return f"{self.host}:{self.machine}:"

    def owner(self, nonce: str, thread: str) -> str:
        """The lease owner string of one worker thread (at most ~110 characters)."""
        return f"{self.machine_prefix}{self.pid}:{self.start}:{nonce}:{thread}"


def parse_owner(owner: str) -> ProcessIdentity | None:
    """The process named by a lease owner string, or None for any other format."""
    parts = owner.split(":", 5)
    if len(parts) != 6 or not parts[1]:
        return None
    try:
        pid, start = int(parts[2]), int(parts[3])
    except ValueError:
        return None
    if pid <= 0 or start <= 0:
        return None
    return ProcessIdentity(parts[0], parts[1], pid, start)


def owner_gone(owner: str, me: ProcessIdentity) -> bool:
    """Whether the process that holds ``owner`` has certainly exited.

    True only for an owner of this machine (same host name and machine key as ``me``)
    whose process no longer exists, is a zombie, or whose pid now belongs to a process
    that started at another time. An owner of ``me``'s own process is never gone.
    """
    held = parse_owner(owner)
    if held is None or not me.checkable:
        return False
    if (held.host, held.machine) != (me.host, me.machine):
        return False
    if (held.pid, held.start) == (me.pid, me.start):
        return False
    return process_gone(held.pid, held.start)


def process_gone(pid: int, start: int) -> bool:
    """Whether process ``pid``, started at ``start`` ticks after boot, has exited.

    ``kill(pid, 0)`` says whether the pid exists at all (even where ``/proc`` hides other
    users' processes); ``/proc/<pid>/stat`` gives its start time and state. When the pid
    exists but its start time cannot be read, the answer is False: not knowing is not
    "gone".
    """
    if not _pid_exists(pid):
        return True
    try:
        state, started = _stat(PROC / str(pid) / "stat")
    except (OSError, ValueError, IndexError):
        return not _pid_exists(pid)  # it exited meanwhile, or /proc hides it from us
    return started != start or state in ("Z", "X")


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only the pid is looked up
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists and belongs to another user
    return True


def _stat(path: Path) -> tuple[str, int]:
    """(state, start time) from a ``/proc/<pid>/stat`` file.

    The second field, the command name in parentheses, may itself hold spaces and
    parentheses, so the fields are counted from the last ")": state is field 3 and the
    start time field 22.
    """
    text = path.read_text()
    rest = text[text.rindex(")") + 2 :].split()
    return rest[0], int(rest[22 - 3])
