"""Watermarks (spec §3.4): the ``LOGOS`` tracks and legacy ``IMAGE`` items of an avtrans
preset, and ExtParam ``LOGOS`` (spec §3.8), as typed :class:`LogoSpec` tracks.

The preset's values were checked when the preset was stored (``service/preset_params.py``,
``1001`` naming the key) and are kept there as the client sent them
(``AvtransSpec.logos``/``.image``); :func:`preset_tracks` reads them. ExtParam ``LOGOS`` is
checked by the same rules at CreateTask, ``1018`` naming the key (:func:`ext_tracks`), and
replaces the preset's watermarks when given (an empty array removes them).

Geometry values are pixels (a whole number) or a fraction of the output's width or height
(strictly between 0 and 1): :class:`Length`. ``docs/transcoding.md`` ("Watermarks") is the
user-facing description.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from openkvs.errors import ApiError
from openkvs.service import preset_params as rules
from openkvs.service.param_values import to_number
from openkvs.service.params import given

#: The most logos one task may overlay (each is one more ffmpeg input).
MAX_LOGOS = 16

Tracks = tuple[tuple["LogoSpec", ...], ...]


@dataclass(frozen=True)
class Length:
    """A logo offset or size: ``value`` pixels, or ``value`` × the output's width/height
    when ``relative`` (0 < value < 1)."""

    value: float = 0.0
    relative: bool = False


@dataclass(frozen=True)
class LogoSpec:
    """One logo of a track: where it comes from, where and when it is drawn."""

    url: str  # "/<bucket>/<key>" or an http(s) URL
    logotype: str = "image"  # "image" or "gif" (informative: the file's bytes decide)
    refer_pos: str = "TopLeft"  # the output corner the offsets are measured from
    dx: Length = field(default_factory=Length)
    dy: Length = field(default_factory=Length)
    width: Length | None = None  # None: the logo's own width (or kept aspect)
    height: Length | None = None
    opacity: float = 1.0
    ss: float = 0.0  # seconds on the output timeline
    duration: float = 0.0  # seconds; 0 = until the end
    loop: bool = False  # an animated GIF loops for its whole display time
    disable_scale: bool = False  # pixel geometry is never scaled with the output size
    optimal_w: int = 0  # reference output width the pixel geometry was designed for
    optimal_h: int = 0
    short_side: int = 0  # reference short side (the same proportional scaling)

    @property
    def bucket_object(self) -> bool:
        """Whether the logo is an object in the store (else an http(s) URL)."""
        return self.url.startswith("/")


def _number(logo: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    return to_number(logo[key]) if given(logo, key) else default


def _length(logo: Mapping[str, Any], key: str, *, pixels_only: bool = False) -> Length | None:
    if not given(logo, key):
        return None
    value = to_number(logo[key])
    return Length(value, relative=not pixels_only and 0 < value < 1)


def _size(logo: Mapping[str, Any], key: str) -> Length | None:
    size = _length(logo, key)
    return size if size is not None and size.value > 0 else None


def _first(logo: Mapping[str, Any], keys: Iterable[str]) -> str:
    return next(str(logo[key]) for key in keys if given(logo, key))


def logo_of(logo: Mapping[str, Any]) -> LogoSpec:
    """A ``LOGOS`` logo object (already checked) as a :class:`LogoSpec`. ``dx``/``dy`` win
    over the legacy pixel offsets ``offsetX``/``offsetY``."""
    dx = _length(logo, "dx") or _length(logo, "offsetX", pixels_only=True) or Length()
    dy = _length(logo, "dy") or _length(logo, "offsetY", pixels_only=True) or Length()
    return LogoSpec(
        url=_first(logo, ("url", "pic", "pic_url")),
        logotype=str(logo["logotype"]) if given(logo, "logotype") else "image",
        refer_pos=str(logo["referPos"]) if given(logo, "referPos") else "TopLeft",
        dx=dx,
        dy=dy,
        width=_size(logo, "width"),
        height=_size(logo, "height"),
        opacity=_number(logo, "opacity", 1.0),
        ss=_number(logo, "ss"),
        duration=_number(logo, "duration"),
        loop=_number(logo, "loop") == 1,
        disable_scale=_number(logo, "disable_scale") == 1,
        optimal_w=int(_number(logo, "optimal_w")),
        optimal_h=int(_number(logo, "optimal_h")),
        short_side=int(_number(logo, "shortSide")),
    )


def image_item(item: Mapping[str, Any]) -> LogoSpec:
    """A legacy ``IMAGE`` item (already checked): a logo anchored TopLeft, pixel offsets."""
    return LogoSpec(
        url=_first(item, ("logoUrl", "pic")),
        dx=_length(item, "offsetX", pixels_only=True) or Length(),
        dy=_length(item, "offsetY", pixels_only=True) or Length(),
        short_side=int(_number(item, "shortSide")),
    )


def preset_tracks(
    logos: Iterable[Iterable[Mapping[str, Any]]], image: Iterable[Mapping[str, Any]]
) -> Tracks:
    """The tracks of a preset (``AvtransSpec.logos``/``.image``): each ``LOGOS`` track, then
    each ``IMAGE`` item as a track of its own. Empty tracks are dropped."""
    tracks = [tuple(logo_of(logo) for logo in track) for track in logos]
    tracks += [(image_item(item),) for item in image]
    return tuple(track for track in tracks if track)


def ext_tracks(ext: Mapping[str, Any]) -> Tracks | None:
    """ExtParam ``LOGOS`` checked (``1018`` naming the key) as tracks; None when not given.
    An empty array (or only empty tracks) gives ``()``: no watermark for this task."""
    if not given(ext, "LOGOS"):
        return None
    raw = ext["LOGOS"]
    if isinstance(raw, list) and all(isinstance(t, list) and not t for t in raw):
        return ()
    try:
        rules.check_avlogo({"LOGOS": raw})
    except ApiError as exc:
        raise ApiError(1018, exc.detail.replace("Param.LOGOS", "ExtParam LOGOS", 1)) from None
    tracks = preset_tracks(raw, ())
    if count(tracks) > MAX_LOGOS:
        raise ApiError(1018, f"ExtParam LOGOS holds {count(tracks)} logos; at most {MAX_LOGOS}")
    return tracks


def count(tracks: Tracks) -> int:
    return sum(len(track) for track in tracks)


def task_tracks(
    logos: Iterable[Iterable[Mapping[str, Any]]],
    image: Iterable[Mapping[str, Any]],
    override: Tracks | None,
) -> Tracks:
    """The tracks a task draws: ExtParam ``LOGOS`` when given, else the preset's."""
    return override if override is not None else preset_tracks(logos, image)


def check_count(tracks: Tracks) -> None:
    """1015 for a preset holding more logos than one task may overlay."""
    if count(tracks) > MAX_LOGOS:
        raise ApiError(
            1015, f"a watermark of {count(tracks)} logos cannot run (at most {MAX_LOGOS})"
        )
