"""``avtrans`` presets (spec §3.2): ``Param`` → :class:`AvtransSpec`.

(Being rebuilt: today the checks of ``service.preset_params`` run and the spec keeps the
client's ``Param``.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openkvs.service import preset_params as rules


@dataclass(frozen=True)
class AvtransSpec:
    f: str


@dataclass(frozen=True)
class AvtransOptions:
    """A task's ExtParam for avtrans (spec §3.8)."""

    ss: float | None = None
    duration: float | None = None
    vol_percent: int | None = None
    vol_db: float | None = None
    pass_params: dict[str, str] | None = None
    progress_url: str = ""
    progress_interval: float = 10.0


def parse(param: Mapping[str, Any]) -> AvtransSpec:
    rules.check_avtrans(param)
    return AvtransSpec(f=str(param["f"]))
