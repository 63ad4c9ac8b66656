"""CreateWaveTask (spec §2.8, §7): the request rules and the queued task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from openkvs.errors import ApiError, missing
from openkvs.model import User
from openkvs.service import params as p
from openkvs.service.context import Services
from openkvs.service.sources import check_destination, check_source, source_list
from openkvs.service.submission import queue_task, read_submission
from openkvs.storage.keys import validate_bucket, validate_key

ACTION = "CreateWaveTask"
TASK_TYPE = "audiowave"
PRESET = "wave"
MAX_POINTS = 4095
#: The longest ``ss``/``duration`` accepted: 50 hours, the longest source a task may have.
MAX_SECONDS = 50 * 3600
Layout = Literal["points", "peaks"]
LAYOUTS: tuple[Layout, ...] = ("points", "peaks")


@dataclass(frozen=True)
class WaveOptions:
    """What the engine needs beyond the source: the ExtParam-controlled choices."""

    points: int
    layout: Layout = "points"
    ss: float | None = None
    duration: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "points": self.points,
            "layout": self.layout,
            "ss": self.ss,
            "duration": self.duration,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WaveOptions:
        return cls(
            points=int(data["points"]),
            layout=cast(Layout, data.get("layout", "points")),
            ss=data.get("ss"),
            duration=data.get("duration"),
        )


def _seconds(ext: dict[str, Any], name: str, *, positive: bool) -> float | None:
    if name not in ext or ext[name] in (None, ""):
        return None
    value = ext[name]
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(1018, f"ExtParam {name} must be a number of seconds") from exc
    if isinstance(value, bool) or seconds < 0 or (positive and seconds == 0):
        raise ApiError(1018, f"ExtParam {name} must be {'>' if positive else '>='} 0")
    if not seconds <= MAX_SECONDS:  # also NaN and infinity ("nan", "1e999" as strings)
        raise ApiError(1018, f"ExtParam {name} must be at most {MAX_SECONDS} seconds")
    return seconds


def wave_options(params: p.Params, ext: dict[str, Any]) -> WaveOptions:
    points = p.required_int(params, "points", 1, MAX_POINTS)
    layout = ext.get("format", "points")
    if layout not in LAYOUTS:
        raise ApiError(1018, f"ExtParam format must be one of {', '.join(LAYOUTS)}")
    return WaveOptions(
        points=points,
        layout=cast(Layout, layout),
        ss=_seconds(ext, "ss", positive=False),
        duration=_seconds(ext, "duration", positive=True),
    )


def create_wave_task(services: Services, user: User, params: p.Params) -> str:
    """Validate a CreateWaveTask request, queue the task, return its TaskID."""
    if not p.given(params, "Preset"):
        raise missing("Preset")
    if params["Preset"] != PRESET:
        raise ApiError(1005, "Preset must be 'wave' for CreateWaveTask")
    if not p.given(params, "SrcInfo"):
        raise missing("SrcInfo")
    sources = source_list(params["SrcInfo"])
    dst_bucket = validate_bucket(p.required_str(params, "DstBucket"), "DstBucket")
    dst_key = validate_key(p.required_str(params, "DstObjectKey"), "DstObjectKey")
    if not p.given(params, "points"):
        raise missing("points")
    submission = read_submission(services, user, params)
    options = wave_options(params, submission.ext)
    src_bucket, src_key = check_source(services.storage, services.buckets, user, sources[0]["path"])
    check_destination(services.storage, services.buckets, user, dst_bucket)
    request = {
        "SrcInfo": sources,
        "DstBucket": dst_bucket,
        "DstDir": "",
        "DstObjectKey": dst_key,
        "source": {"bucket": src_bucket, "key": src_key},
        "wave": options.to_json(),
        # The user's legacy callback layouts (docs/callbacks.md), as CreateTask keeps them.
        "callback_style": services.users.callback_style(user.id).as_request(),
    }
    return queue_task(
        services,
        user,
        action=ACTION,
        task_type=TASK_TYPE,
        preset=PRESET,
        submission=submission,
        request=request,
    )
