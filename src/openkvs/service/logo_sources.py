"""CreateTask's check of watermark logos kept in the object store (spec §3.4).

A logo given as ``/<bucket>/<key>`` is read like a source: the bucket must exist (1011), the
user must own it or have been granted it (1212) and the object must exist (1210); the
message names the logo. Logos at http(s) URLs are checked when the worker fetches them
(``worker/logos.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openkvs.errors import ApiError
from openkvs.model import User
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec
from openkvs.presets.codec import load
from openkvs.presets.logos import task_tracks
from openkvs.service.context import Services
from openkvs.service.sources import check_source


def check_logo_objects(
    services: Services, user: User, spec: object, options: Mapping[str, Any]
) -> None:
    """Check every store logo the task draws (``options``: the stored ExtParam options)."""
    if not isinstance(spec, AvtransSpec):
        return
    override = load(AvtransOptions, dict(options)).logos
    urls = {
        logo.url: None
        for track in task_tracks(spec.logos, spec.image, override)
        for logo in track
        if logo.bucket_object
    }
    for url in urls:
        try:
            check_source(services.storage, services.buckets, user, url)
        except ApiError as exc:
            raise ApiError(exc.code, f"logo {url}: {exc.detail}") from None
