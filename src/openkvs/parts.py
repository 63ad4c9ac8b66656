"""The parts of a split task: their type, TaskIDs and where their outputs go.

A split ``avtrans`` task (docs/transcoding.md, "Split-and-stitch") queues one part per
chunk. A part's TaskID is derived from its parent's and its index, so that the parent's
worker, a later attempt of the parent and GetTaskByTaskID all find the parts without a list
of them being kept anywhere, and a parent that is run again finds the parts it made before.
"""

from __future__ import annotations

import hashlib

#: The task type of parts (``kinds.py``).
PART_TYPE = "avtrans_part"
#: The key prefix, in the parent's destination bucket, of the chunks parts write.
WORK_PREFIX = ".openkvs-split"
#: The most parts a task may have (a bound on loops that look parts up one by one).
MAX_PARTS = 1000


def part_task_id(parent_id: str, index: int) -> str:
    """The TaskID of part ``index`` of ``parent_id``: 40 hex digits, as TaskIDs are."""
    return hashlib.sha1(f"{parent_id}/part/{index}".encode()).hexdigest()


def part_key(parent_id: str, index: int, extension: str) -> str:
    """The object key a part writes its chunk to (in the parent's destination bucket)."""
    return f"{WORK_PREFIX}/{parent_id}/part-{index:04d}{extension}"
