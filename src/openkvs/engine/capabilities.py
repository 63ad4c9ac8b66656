"""The :class:`~openkvs.engine.formats.Capabilities` of an installed ffmpeg (runs it).

The preset rules never call this: they judge against a capability set they are given
(``formats.BASELINE`` by default). This reads the real set, for checks of a deployment and
for a test that the baseline holds on the machine that runs the tests.
"""

from __future__ import annotations

import functools
import logging
import re

from openkvs.engine import ffmpeg
from openkvs.engine.formats import BASELINE, Capabilities
from openkvs.errors import TaskError

log = logging.getLogger(__name__)

#: ``-encoders`` lines: `` V....D libx264   libx264 H.264 ...``.
_ENCODER = re.compile(r"^\s[VAS][\w.]{5}\s+(\S+)", re.MULTILINE)


def detect(timeout: float = 10.0) -> Capabilities:
    """The encoders of ``ffmpeg`` and its resamplers (``soxr`` when built with libsoxr)."""
    encoders = ffmpeg.run([ffmpeg.FFMPEG, "-hide_banner", "-encoders"], timeout=timeout)
    build = ffmpeg.run([ffmpeg.FFMPEG, "-hide_banner", "-buildconf"], timeout=timeout)
    resamplers = {"swr"} | ({"soxr"} if b"--enable-libsoxr" in build else set())
    names = _ENCODER.findall(encoders.decode(errors="replace"))
    return Capabilities(frozenset(names), frozenset(resamplers))


@functools.cache
def installed() -> Capabilities:
    """:func:`detect` of this machine's ffmpeg, once per process (:data:`BASELINE` when it
    cannot be run: then the tasks would fail anyway, and ``openkvs doctor`` says why)."""
    try:
        return detect()
    except TaskError as exc:
        log.warning("ffmpeg_capabilities_unknown", extra={"detail": exc.detail})
        return BASELINE
