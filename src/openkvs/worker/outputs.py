"""Writing a job's output files from its scratch folder to the destination bucket.

Every object is written with the task's ``DstAcl`` (``job.destination.acl``) and a content
type (the plan's, else the one its key's extension gives: ``storage/mime.py``). Progress is
reported as :attr:`Phase.UPLOADING`, by bytes written. The destination bucket gone (deleted
after CreateTask) or any failed write → ``TaskError(2033)`` ("HTTP upload file fail");
cancel between two files → 2005.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from openkvs.errors import TaskError
from openkvs.storage.base import ObjectStorage, StorageError
from openkvs.storage.mime import content_type_for
from openkvs.worker.job import Job, Phase


@dataclass(frozen=True)
class OutputFile:
    """One file of the scratch folder and the key it is written to."""

    path: Path
    key: str
    content_type: str = ""  # "" → from the key's extension


def require_bucket(storage: ObjectStorage, bucket: str) -> None:
    """2033 when the destination bucket no longer exists (checked before the media work,
    so a task whose output cannot be written fails before it spends minutes of CPU)."""
    try:
        exists = storage.bucket_exists(bucket)
    except StorageError as exc:
        raise TaskError(2033, f"cannot look at the destination bucket {bucket!r}: {exc}") from exc
    if not exists:
        raise TaskError(2033, f"the destination bucket {bucket!r} does not exist")


def upload(job: Job, files: Sequence[OutputFile]) -> None:
    """Write ``files`` to ``job.destination.bucket`` in order, reporting progress."""
    destination = job.destination
    sizes = [_size(output.path) for output in files]
    total = sum(sizes) or 1
    job.report(Phase.UPLOADING, 0)
    require_bucket(job.storage, destination.bucket)
    written = 0
    for output, size in zip(files, sizes, strict=True):
        if job.cancel.is_set():
            raise TaskError(2005, "cancelled while uploading")
        try:
            job.storage.put_file(
                destination.bucket,
                output.key,
                output.path,
                acl=destination.acl,
                content_type=output.content_type or content_type_for(output.key),
            )
        except StorageError as exc:
            raise TaskError(2033, str(exc)) from exc
        written += size
        job.report(Phase.UPLOADING, 100.0 * written / total)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:  # the engine said it wrote it: this is a bug, not a user error
        raise TaskError(2001, f"the output {path.name} was not written: {exc}") from exc
