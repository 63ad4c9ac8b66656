"""Folders named after the process that made them, removed once that process is gone.

A worker killed with ``kill -9`` cannot clean up; its successor (or any process of the same
machine) removes what it left: the sandbox's link folders and the tasks' scratch folders.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path


def remove_orphans(parent: str | Path, pattern: re.Pattern[str]) -> int:
    """Remove the folders in ``parent`` whose whole name matches ``pattern`` (group 1 is the
    pid of the process that made it) and whose process no longer exists; how many were
    removed. A folder whose pid is alive (or was reused) is left alone."""
    removed = 0
    try:
        names = os.listdir(parent)
    except OSError:
        return 0
    for name in names:
        found = pattern.fullmatch(name)
        if not found:
            continue
        try:
            os.kill(int(found.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
            removed += 1
        except (PermissionError, OverflowError):
            continue
    return removed
