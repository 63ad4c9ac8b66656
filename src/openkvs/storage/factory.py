"""The object storage a process uses, chosen by ``OPENKVS_STORAGE``."""

from __future__ import annotations

from openkvs.config import Settings
from openkvs.storage.base import ObjectStorage
from openkvs.storage.local import LocalStorage


def open_storage(settings: Settings) -> ObjectStorage:
    """``local`` (default): folders under ``<data_dir>/buckets``; ``s3``: the S3-compatible
    store of the ``OPENKVS_S3_*`` settings. Nothing is contacted yet."""
    if settings.storage == "s3":
        from openkvs.storage.s3 import S3Storage  # boto3 loads only when it is used

        return S3Storage.from_settings(settings)
    return LocalStorage(settings.buckets_dir)


def describe_storage(settings: Settings) -> str:
    """Where the storage is, for people (``openkvs doctor``; never a secret)."""
    if settings.storage == "s3":
        from openkvs.storage.s3 import S3Config

        return S3Config.from_settings(settings).describe()
    return f"local, {settings.buckets_dir}"
