"""Statistics (spec §2.17–§2.20), computed from what the store recorded."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from openkvs import kinds
from openkvs.errors import ApiError
from openkvs.model import TaskRecord, User
from openkvs.service import params as p
from openkvs.service import presets as preset_rules
from openkvs.service.context import Services
from openkvs.service.ids import CST
from openkvs.service.pipelines import counters
from openkvs.service.ranges import MAX_AGE_DAYS, UnixRange, bucket_of, buckets, unix_range

_RESOLUTIONS = ((3840, "4K"), (2560, "2K"), (1920, "1080P"), (1280, "720P"), (0, "480P"))


def query_task_stats(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    preset = p.optional_str(params, "Preset")
    if preset and preset not in preset_rules.RESERVED:
        name = preset_rules.check_name(params)
        if services.presets.get(user.id, name) is None:
            raise ApiError(1005, f"preset {name!r} does not exist")
    now = services.clock()
    today = datetime.fromtimestamp(now, CST).date()
    start_value = p.to_int("StartDate", params["StartDate"]) if p.given(params, "StartDate") else 0
    try:
        start = (
            datetime.strptime(str(start_value), "%Y%m%d").date()
            if start_value
            else today.replace(day=1)
        )
    except ValueError as exc:
        raise ApiError(1001, f"StartDate must be YYYYMMDD, got {start_value}") from exc
    # Tasks are kept for MAX_AGE_DAYS: an older StartDate (the SDK wrapper's default is
    # 20170101) counts from the start of what is kept, and the answer says so.
    start = max(start, today - timedelta(days=MAX_AGE_DAYS))
    since = datetime(start.year, start.month, start.day, tzinfo=CST).timestamp()
    counts = services.tasks.status_counts(user.id, since, preset=preset or None)
    return {"Preset": preset, "StartDate": start.strftime("%Y%m%d"), "TaskStatus": counters(counts)}


def _envelope(r: UnixRange, datas: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "StartUnixTime": str(r.start),
        "EndUnixTime": str(r.end),
        "Granularity": str(r.granularity),
        "Datas": datas,
    }


def get_interface_number(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    r = unix_range(params, services.clock())
    starts = buckets(r)
    per: list[dict[str, int]] = [defaultdict(int) for _ in starts]
    for period, action, count in services.counter.between(user.id, r.start - 299, r.end):
        i = bucket_of(max(period, r.start), starts)
        if i is not None:
            per[i][action] += count
    datas = [
        {
            "TimeStamp": str(ts),
            "Number": sum(types.values()),
            "Types": [{"Type": k, "Number": v} for k, v in sorted(types.items())],
        }
        for ts, types in zip(starts, per, strict=True)
    ]
    return _envelope(r, datas)


def output_seconds(task: TaskRecord) -> list[tuple[str, str | None, int]]:
    """(VCodec, ResolutionType or None, whole seconds) of each transcoded output, read from
    its ``outMediainfo``; the codec is ``copy`` for a remux and ``audio`` for audio only."""
    out: list[tuple[str, str | None, int]] = []
    video_param = task.request.get("preset", {}).get("param", {}) or {}
    video_param = video_param.get("VIDEO") or video_param.get("video") or {}
    for item in task.result or []:
        try:
            info = json.loads(item.get("outMediainfo", "") or "{}")
            seconds = round(float(info.get("format", {}).get("duration", 0)))
        except (TypeError, ValueError):
            continue
        video = next((s for s in info.get("streams", []) if s.get("codec_type") == "video"), None)
        if video is None:
            out.append(("audio", None, seconds))
            continue
        codec = (
            "copy"
            if video_param.get("vcodec") == "copy"
            else ("h265" if video.get("codec_name") in ("hevc", "h265") else "h264")
        )
        side = max(int(video.get("width", 0)), int(video.get("height", 0)))
        resolution = next(name for limit, name in _RESOLUTIONS if side >= limit)
        out.append((codec, resolution, seconds))
    return out


def get_media_trans_duration(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    r = unix_range(params, services.clock())
    starts = buckets(r)
    totals: list[dict[str, dict[str | None, int]]] = [
        defaultdict(lambda: defaultdict(int)) for _ in starts
    ]
    for task in services.tasks.finished_between(user.id, kinds.transcode_kinds(), r.start, r.end):
        i = bucket_of(task.finished_at or 0, starts)
        if i is None:
            continue
        for codec, resolution, seconds in output_seconds(task):
            totals[i][codec][resolution] += seconds
    datas = []
    for ts, codecs in zip(starts, totals, strict=True):
        vcodecs: list[dict[str, Any]] = [
            {
                "VCodec": codec,
                "Duration": sum(res.values()),
                "Resolutions": [
                    {"ResolutionType": k, "Duration": v}
                    for k, v in sorted(res.items())
                    if k is not None
                ],
            }
            for codec, res in sorted(codecs.items())
        ]
        datas.append(
            {
                "TimeStamp": str(ts),
                "Duration": sum(v["Duration"] for v in vcodecs),
                "VCodecs": vcodecs,
            }
        )
    return _envelope(r, datas)


def images_of(task: TaskRecord) -> int:
    """Images a snapshot or sampling task produced: one per output item."""
    return len(task.result or [])


def get_screenshot_number(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    r = unix_range(params, services.clock())
    starts = buckets(r)
    numbers = [0] * len(starts)
    for task in services.tasks.finished_between(user.id, kinds.image_kinds(), r.start, r.end):
        i = bucket_of(task.finished_at or 0, starts)
        if i is not None:
            numbers[i] += images_of(task)
    datas = [{"TimeStamp": str(ts), "Number": n} for ts, n in zip(starts, numbers, strict=True)]
    return _envelope(r, datas)
