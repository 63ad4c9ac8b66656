"""Owner-only files: the data folder, the SQLite database and the data key file.

What openkvs creates is owner-only: folders 0700, files 0600 (the SQLite ``-wal`` and
``-shm`` files take the database file's mode). What already exists keeps its mode: an
operator may have opened it on purpose (a backup group, say), so openkvs does not change it
but logs ``insecure_permissions`` (path, mode) at every start while a group or other users
have any access to it. ``chmod 700 DIR`` and ``chmod 600 FILE`` silence it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create the folder ``path`` owner-only if it is missing (its missing parents get the
    usual mode); warn if it exists and others may use it."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True)
    except FileExistsError:
        warn_if_open(path)


def private_file(path: Path) -> None:
    """Create ``path`` as an empty owner-only file if it is missing; warn if it exists and
    others may use it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        warn_if_open(path)
    else:
        os.close(fd)


def open_to_others(path: Path) -> int | None:
    """The permission bits of ``path`` when its group or other users have any access to
    it, else None (also when it does not exist)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def warn_if_open(path: Path) -> None:
    mode = open_to_others(path)
    if mode is not None:
        wanted = DIR_MODE if path.is_dir() else FILE_MODE
        log.warning(
            "insecure_permissions",
            extra={"path": str(path), "mode": f"{mode:o}", "advice": f"chmod {wanted:o}"},
        )
