"""``avsnapshot`` and ``avsample`` presets (spec §3.3): one image, or an image every
``interval`` seconds with optional sprite sheets; and the ExtParam they read (§3.8).

``Param`` → :class:`SnapshotSpec` / :class:`SampleSpec` (``1001`` naming the key); a task's
ExtParam → :class:`ImageOptions` (``1018`` for a bad ``ss``/``duration``, ``1015`` for more
than one source: these kinds read exactly one). What the values mean when the task runs is
in ``docs/images.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openkvs.errors import ApiError
from openkvs.presets.codec import dump
from openkvs.service import preset_params as rules
from openkvs.service.param_values import parse_time
from openkvs.service.params import given, to_int

#: Default sprite grid (``spritew`` columns × ``spriteh`` rows) when the preset gives none.
DEFAULT_SPRITE_GRID = 10
#: The longest ExtParam ``ss``/``duration`` accepted: 50 hours, the longest source a task
#: may have (spec §6.2, 2062).
MAX_SECONDS = 50 * 3600


@dataclass(frozen=True)
class ImageSize:
    """Requested picture size; 0 means "not given" (``engine.snapshot.output_size`` has the
    rules: both sides exact, one side keeps the aspect ratio, else ``short_side``)."""

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
    """``avsample``: an image every ``interval`` seconds, optionally tiled into sprite
    sheets of ``sprite_columns`` × ``sprite_rows`` tiles."""

    f: str = "jpg"
    size: ImageSize = ImageSize()
    ss: float | None = None
    interval: int = 1
    sprite: bool = False
    sprite_columns: int = DEFAULT_SPRITE_GRID
    sprite_rows: int = DEFAULT_SPRITE_GRID


@dataclass(frozen=True)
class ImageOptions:
    """A task's ExtParam for ``avsnapshot``/``avsample``: ``ss`` (seconds from the start of
    the source; wins over the preset's) and ``duration`` (``avsample`` only: seconds to
    sample from the start). None: not given."""

    ss: float | None = None
    duration: float | None = None

    def start(self, spec: SnapshotSpec | SampleSpec) -> float:
        """Where the task starts: ExtParam ``ss``, else the preset's ``ss``, else 0."""
        if self.ss is not None:
            return self.ss
        return spec.ss if spec.ss is not None else 0.0


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
        sprite_columns=_int(param, "spritew", DEFAULT_SPRITE_GRID),
        sprite_rows=_int(param, "spriteh", DEFAULT_SPRITE_GRID),
    )


def one_source(kind: str, sources: list[dict[str, Any]]) -> None:
    """1015 unless ``sources`` holds exactly one item: image tasks read one source."""
    if len(sources) != 1:
        raise ApiError(1015, f"{kind} tasks take one source; SrcInfo has {len(sources)}")


def _seconds(ext: Mapping[str, Any], name: str, *, positive: bool) -> float | None:
    """ExtParam ``name`` as seconds (a number, a numeric string or ``[HH:]MM:SS[.mmm]``);
    None when absent; 1018 when it is anything else, negative (or 0 when ``positive``) or
    beyond :data:`MAX_SECONDS`."""
    if not given(ext, name):
        return None
    value = ext[name]
    try:
        seconds = parse_time(value)
    except ValueError:
        raise ApiError(
            1018,
            f"ExtParam {name} must be seconds (e.g. 12.5) or HH:MM:SS[.mmm], got {value!r:.60}",
        ) from None
    if positive and seconds <= 0:
        raise ApiError(1018, f"ExtParam {name} must be greater than 0, got {value!r:.60}")
    if seconds > MAX_SECONDS:
        raise ApiError(1018, f"ExtParam {name} must be at most {MAX_SECONDS} seconds")
    return seconds


def snapshot_options(
    spec: SnapshotSpec, ext: Mapping[str, Any], sources: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ExtParam of an ``avsnapshot`` task: ``ss`` only (``duration`` is ignored)."""
    one_source("avsnapshot", sources)
    return dump(ImageOptions(ss=_seconds(ext, "ss", positive=False)))


def sample_options(
    spec: SampleSpec, ext: Mapping[str, Any], sources: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ExtParam of an ``avsample`` task: ``ss`` and ``duration``."""
    one_source("avsample", sources)
    return dump(
        ImageOptions(
            ss=_seconds(ext, "ss", positive=False),
            duration=_seconds(ext, "duration", positive=True),
        )
    )
