"""The avtrans command builder: preset spec + task options + probed source → ffmpeg argv.

Pure: no I/O, no clock. (Interface in place; the builder itself is being written.)
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openkvs.presets.avtrans import AvtransOptions, AvtransSpec


@dataclass(frozen=True)
class SourceFacts:
    """What the builder needs to know about the source (from its ffprobe JSON)."""

    duration: float = 0.0  # seconds; 0 when unknown
    has_video: bool = False
    has_audio: bool = False
    width: int = 0  # coded size, before rotation
    height: int = 0
    rotation: int = 0  # clockwise degrees to turn the picture upright: 0, 90, 180 or 270
    fps: float = 0.0
    video_codec: str = ""
    pix_fmt: str = ""
    video_bitrate: int = 0
    audio_codec: str = ""
    audio_bitrate: int = 0
    sample_rate: int = 0
    channels: int = 0


@dataclass(frozen=True)
class TranscodePlan:
    """The commands to run, in order (two-pass: two); the last one writes ``output``."""

    commands: tuple[tuple[str, ...], ...]
    output: str  # path of the output file (in the job's scratch folder)
    duration: float  # seconds of media the output will hold (progress is measured on it)
    content_type: str  # of the output object


def facts_from_probe(probe_json: dict[str, Any]) -> SourceFacts:
    """The :class:`SourceFacts` of ffprobe's ``-show_streams -show_format`` JSON."""
    raise NotImplementedError  # being written


def plan_transcode(
    spec: AvtransSpec,
    options: AvtransOptions,
    facts: SourceFacts,
    *,
    input_args: Sequence[str],
    scratch: str,
    threads: int = 0,
) -> TranscodePlan:
    """The plan for one avtrans task. ``input_args`` open the source (``-i`` included,
    from ``engine.sandbox.SourceInput.args()``); outputs and pass logs go in ``scratch``.
    Raises ``TaskError(2049)`` when ``intelligentSwitch`` is 1 and the request exceeds the
    source."""
    raise NotImplementedError  # being written


def command_text(commands: Sequence[Sequence[str]]) -> str:
    """The commands as one shell line: each shell-quoted, joined with `` && ``."""
    return " && ".join(shlex.join(command) for command in commands)
