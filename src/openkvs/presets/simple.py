"""The small preset types: ``avinfo``, ``audiowave``, ``aiproduction`` and ``avlogo``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openkvs.errors import ApiError, invalid
from openkvs.service import preset_params as rules
from openkvs.service.params import given, to_int


@dataclass(frozen=True)
class AvinfoSpec:
    """``avinfo`` has no settings (spec §3.6): any object, ``{}`` included."""


@dataclass(frozen=True)
class AudiowaveSpec:
    """``audiowave`` (spec §3.7): the default number of points, if the preset gives one."""

    points: int | None = None


@dataclass(frozen=True)
class AiproductionSpec:
    """``aiproduction`` (spec §3.7): only ``smart_cover`` exists (one cover image at
    DstObjectKey: ``engine/cover.py``)."""

    function_name: str = "smart_cover"


@dataclass(frozen=True)
class AvlogoSpec:
    """A logo-only chain stage (spec §3.4.4). The logos are checked, kept as sent."""

    logos: int


def parse_avinfo(param: Mapping[str, Any]) -> AvinfoSpec:
    return AvinfoSpec()


def parse_audiowave(param: Mapping[str, Any]) -> AudiowaveSpec:
    rules.check_fields("Param", param, rules.AUDIOWAVE)
    points = to_int("Param.points", param["points"]) if given(param, "points") else None
    return AudiowaveSpec(points)


def parse_aiproduction(param: Mapping[str, Any]) -> AiproductionSpec:
    if not given(param, "function_name"):
        raise invalid("Param.function_name", "is required")
    rules.choice("smart_cover")("Param.function_name", param["function_name"])
    return AiproductionSpec(str(param["function_name"]))


def aiproduction_options(
    spec: AiproductionSpec, ext: Mapping[str, Any], sources: list[dict[str, Any]]
) -> dict[str, Any]:
    """``smart_cover`` reads one source (1015 for more) and no ExtParam."""
    if len(sources) != 1:
        raise ApiError(1015, f"aiproduction tasks take one source; SrcInfo has {len(sources)}")
    return {}


def parse_avlogo(param: Mapping[str, Any]) -> AvlogoSpec:
    return AvlogoSpec(rules.check_avlogo(param))
