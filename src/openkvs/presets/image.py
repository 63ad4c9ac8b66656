"""``avsnapshot`` and ``avsample`` presets (spec §3.3): one image, or an image every
``interval`` seconds with optional sprite sheets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openkvs.service import preset_params as rules
from openkvs.service.param_values import parse_time
from openkvs.service.params import given, to_int


@dataclass(frozen=True)
class ImageSize:
    """Requested picture size; 0 means "follow the source" (see ``engine`` for the rules)."""

    width: int = 0
    height: int = 0
    short_side: int = 0


@dataclass(frozen=True)
class SnapshotSpec:
    """``avsnapshot``: one image of format ``f`` at ``ss`` seconds (ExtParam ``ss`` wins)."""

    f: str = "jpg"
    size: ImageSize = ImageSize()
    ss: float | None = None


@dataclass(frozen=True)
class SampleSpec:
    """``avsample``: an image every ``interval`` seconds, optionally tiled into sprites of
    ``sprite_columns`` × ``sprite_rows``."""

    f: str = "jpg"
    size: ImageSize = ImageSize()
    ss: float | None = None
    interval: int = 1
    sprite: bool = False
    sprite_columns: int = 10
    sprite_rows: int = 10


def _int(param: Mapping[str, Any], key: str, default: int) -> int:
    return to_int(f"Param.{key}", param[key]) if given(param, key) else default


def _size(param: Mapping[str, Any]) -> ImageSize:
    return ImageSize(_int(param, "width", 0), _int(param, "height", 0), _int(param, "shortSide", 0))


def parse_snapshot(param: Mapping[str, Any]) -> SnapshotSpec:
    rules.check_fields("Param", param, rules.SNAPSHOT)
    return SnapshotSpec(
        f=str(param["f"]) if given(param, "f") else "jpg",
        size=_size(param),
        ss=parse_time(param["ss"]) if given(param, "ss") else None,
    )


def parse_sample(param: Mapping[str, Any]) -> SampleSpec:
    rules.check_fields("Param", param, rules.SAMPLE)
    return SampleSpec(
        f=str(param["f"]) if given(param, "f") else "jpg",
        size=_size(param),
        ss=parse_time(param["ss"]) if given(param, "ss") else None,
        interval=_int(param, "interval", 1),
        sprite=_int(param, "spriteflag", 0) == 1,
        sprite_columns=_int(param, "spritew", 10),
        sprite_rows=_int(param, "spriteh", 10),
    )
