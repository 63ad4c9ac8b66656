"""Time ranges of list and statistics queries (spec §2.11, §2.18), in UTC+8 days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from openkvs.errors import ApiError, invalid
from openkvs.service import params as p
from openkvs.service.ids import CST

MAX_SPAN_DAYS = 31
MAX_AGE_DAYS = 90
LAST_UNIX_SECOND = 253402300799  # 9999-12-31 23:59:59 UTC


@dataclass(frozen=True)
class DayRange:
    """Creation times [since, until) and the effective dates, as the response echoes them."""

    since: float
    until: float
    start_date: str  # YYYYMMDD
    end_date: str  # YYYYMMDD


def _day(params: p.Params, name: str) -> date | None:
    if not p.given(params, name):
        return None
    value = p.to_int(name, params[name])
    if value == 0:
        return None
    try:
        return datetime.strptime(str(value), "%Y%m%d").date()
    except ValueError as exc:
        raise invalid(name, f"must be a date YYYYMMDD, got {value}") from exc


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=CST).timestamp()


def _unix(params: p.Params, name: str) -> int | None:
    """A unix-seconds parameter; 0 and "" mean "not given" (the SDK wrapper sends 0)."""
    if not p.given(params, name):
        return None
    value = p.to_int(name, params[name])
    if not 0 <= value <= LAST_UNIX_SECOND:
        raise invalid(name, "must be unix seconds between 1970 and 9999")
    return value or None


def day_range(params: p.Params, now: float) -> DayRange:
    """``StartDate``/``EndDate`` (UTC+8 days), overridden by ``StartTime``/``EndTime``.

    Defaults: from the first day of the current month to 30 days later, capped at today.
    1001 when the end is before the start; 1019 when the span is over 31 days or the start
    is more than 90 days ago.
    """
    today = datetime.fromtimestamp(now, CST).date()
    start = _day(params, "StartDate") or today.replace(day=1)
    end = _day(params, "EndDate") or min(start + timedelta(days=30), today)
    since, until = _midnight(start), _midnight(end + timedelta(days=1))
    start_time, end_time = _unix(params, "StartTime"), _unix(params, "EndTime")
    if start_time is not None:
        since = float(start_time)
        start = datetime.fromtimestamp(since, CST).date()
    if end_time is not None:
        until = float(end_time) + 1  # inclusive second
        end = datetime.fromtimestamp(end_time, CST).date()
    if until <= since:
        raise ApiError(1001, "the end of the range is before its start")
    if until - since > (MAX_SPAN_DAYS + 1) * 86400 or (end - start).days >= MAX_SPAN_DAYS + 1:
        raise ApiError(1019, f"the range is longer than {MAX_SPAN_DAYS} days")
    if since < _midnight(today - timedelta(days=MAX_AGE_DAYS)):
        raise ApiError(1019, f"the range starts more than {MAX_AGE_DAYS} days ago")
    return DayRange(since, until, start.strftime("%Y%m%d"), end.strftime("%Y%m%d"))


def page(params: p.Params, *, max_limit: int = 100) -> tuple[int, int]:
    """(Marker, Limit): Marker ≥ 0 (default 0); Limit 1..100, larger values clamped."""
    marker = p.to_int("Marker", params["Marker"]) if p.given(params, "Marker") else 0
    if marker < 0:
        raise invalid("Marker", "must not be negative")
    limit = p.to_int("Limit", params["Limit"]) if p.given(params, "Limit") else max_limit
    if limit < 1:
        raise invalid("Limit", "must be at least 1")
    return marker, min(limit, max_limit)


@dataclass(frozen=True)
class UnixRange:
    start: int
    end: int
    granularity: int  # minutes
    aggregate: bool  # ResultType 2


def unix_range(params: p.Params, now: float) -> UnixRange:
    """StartUnixTime/EndUnixTime (default: the last 24 hours), Granularity {5, 60, 1440}
    minutes (default 5), ResultType 1 (series) or 2 (one aggregate)."""
    end = _unix(params, "EndUnixTime") or int(now)
    start = _unix(params, "StartUnixTime") or end - 86400
    if end <= start:
        raise invalid("EndUnixTime", "must be after StartUnixTime")
    if end - start > MAX_SPAN_DAYS * 86400:
        raise ApiError(1019, f"the range is longer than {MAX_SPAN_DAYS} days")
    if start < now - MAX_AGE_DAYS * 86400:
        raise ApiError(1019, f"the range starts more than {MAX_AGE_DAYS} days ago")
    granularity = (
        p.to_int("Granularity", params["Granularity"]) if p.given(params, "Granularity") else 5
    )
    if granularity not in (5, 60, 1440):
        raise invalid("Granularity", "must be 5, 60 or 1440 (minutes)")
    result_type = (
        p.to_int("ResultType", params["ResultType"]) if p.given(params, "ResultType") else 1
    )
    if result_type not in (1, 2):
        raise invalid("ResultType", "must be 1 (series) or 2 (aggregate)")
    return UnixRange(start, end, granularity, result_type == 2)


def buckets(r: UnixRange) -> list[int]:
    """Starts of the periods covering [start, end): aligned to the granularity in UTC+8
    (days start at midnight UTC+8); one period for an aggregate."""
    if r.aggregate:
        return [r.start]
    size = r.granularity * 60
    offset = 8 * 3600
    first = (r.start + offset) // size * size - offset
    return list(range(first, r.end, size))


def bucket_of(ts: float, starts: list[int]) -> int | None:
    """Index of the period that contains ``ts``."""
    import bisect

    i = bisect.bisect_right(starts, int(ts)) - 1
    return i if i >= 0 else None
