"""Writing a job's output files from its scratch folder to the destination bucket.

Every object is written with the task's ``DstAcl`` (``job.destination.acl``) unless the file
names its own ACL (segment files with ``segfile_acl``, an HLS key object), and a content
type (the plan's, else the one its key's extension gives: ``storage/mime.py``). Progress is
reported as :attr:`Phase.UPLOADING`, by bytes written. The destination bucket gone (deleted
after CreateTask) or any failed write → ``TaskError(2033)`` ("HTTP upload file fail");
cancel between two files → 2005. A store that is unavailable (unreachable, timing out,
answering 5xx) is asked again with ``storage.retry.RUNTIME_RETRY``'s backoff before the task
fails with 2033.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from openkvs.errors import TaskError
from openkvs.storage.base import ObjectStorage, StorageError, Unavailable
from openkvs.storage.mime import content_type_for
from openkvs.storage.retry import RUNTIME_RETRY
from openkvs.worker.job import Job, Phase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputFile:
    """One file of the scratch folder and the key it is written to."""

    path: Path
    key: str
    content_type: str = ""  # "" → from the key's extension
    acl: str = ""  # "" → the task's DstAcl (segfile_acl, an HLS key: their own)


def require_bucket(
    storage: ObjectStorage, bucket: str, cancel: threading.Event | None = None
) -> None:
    """2033 when the destination bucket no longer exists (checked before the media work,
    so a task whose output cannot be written fails before it spends minutes of CPU)."""
    try:
        exists = RUNTIME_RETRY.call(
            lambda: storage.bucket_exists(bucket), what=f"bucket {bucket}", cancel=cancel
        )
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
    require_bucket(job.storage, destination.bucket, job.cancel)
    written = 0
    for output, size in zip(files, sizes, strict=True):
        if job.cancel.is_set():
            raise TaskError(2005, "cancelled while uploading")
        put_file(job, output)
        written += size
        job.report(Phase.UPLOADING, 100.0 * written / total)
    log.info(
        "task_uploaded",
        extra={"bucket": destination.bucket, "files": len(files), "bytes": written},
    )


def put_file(job: Job, output: OutputFile) -> None:
    """Write one file to ``job.destination.bucket``: 2033 when it cannot be written (after
    retries while the store is unavailable), 2005 when cancelled while waiting to retry."""
    destination = job.destination

    def put() -> None:
        job.storage.put_file(
            destination.bucket,
            output.key,
            output.path,
            acl=output.acl or destination.acl,
            content_type=output.content_type or content_type_for(output.key),
        )

    _retried(job, put, f"/{destination.bucket}/{output.key}")


def put_bytes(job: Job, key: str, data: bytes, content_type: str = "") -> None:
    """:func:`put_file` of bytes in memory (a JSON document)."""
    destination = job.destination

    def put() -> None:
        job.storage.put_bytes(
            destination.bucket,
            key,
            data,
            acl=destination.acl,
            content_type=content_type or content_type_for(key),
        )

    _retried(job, put, f"/{destination.bucket}/{key}")


def _retried(job: Job, put: Callable[[], None], what: str) -> None:
    try:
        RUNTIME_RETRY.call(put, what=what, cancel=job.cancel)
    except StorageError as exc:
        if isinstance(exc, Unavailable) and job.cancel.is_set():
            raise TaskError(2005, "cancelled while waiting for the storage") from exc
        raise TaskError(2033, str(exc)) from exc


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:  # the engine said it wrote it: this is a bug, not a user error
        raise TaskError(2001, f"the output {path.name} was not written: {exc}") from exc
