"""Pure rules: pipeline windows and blocking, date and unix ranges, statistics periods."""

from __future__ import annotations

from datetime import datetime

import pytest

from openkvs.errors import ApiError
from openkvs.model import TaskStatus
from openkvs.service.ids import CST
from openkvs.service.pipelines import counters, window_open
from openkvs.service.ranges import UnixRange, bucket_of, buckets, day_range, page, unix_range


def _at(hh: int, mm: int = 0) -> float:
    return datetime(2026, 11, 24, hh, mm, tzinfo=CST).timestamp()


@pytest.mark.parametrize(
    ("start", "duration", "hour", "open_"),
    [
        ("", 0, 3, True),
        ("01:00:00", 0, 3, True),
        ("01:00:00", 86400, 0, True),
        ("01:00:00", 14400, 3, True),
        ("01:00:00", 14400, 5, False),
        ("01:00:00", 14400, 0, False),
        ("22:00:00", 14400, 23, True),
        ("22:00:00", 14400, 1, True),
        ("22:00:00", 14400, 2, False),
    ],
)
def test_window(start: str, duration: int, hour: int, open_: bool) -> None:
    assert window_open(start, duration, _at(hour)) is open_


def test_counters() -> None:
    assert counters(
        {
            TaskStatus.EXEC: 1,
            TaskStatus.INIT: 2,
            TaskStatus.SUCC: 3,
            TaskStatus.FAIL: 4,
            TaskStatus.DELETED: 9,
        }
    ) == {"Total": 10, "Running": 1, "Pending": 2, "Success": 3, "Failed": 4}


NOW = datetime(2026, 11, 24, 15, 0, tzinfo=CST).timestamp()


def test_day_range_defaults_and_overrides() -> None:
    r = day_range({}, NOW)
    assert (r.start_date, r.end_date) == ("20261101", "20261124")
    assert r.since == datetime(2026, 11, 1, tzinfo=CST).timestamp()
    assert r.until == datetime(2026, 11, 25, tzinfo=CST).timestamp()
    wrapper = day_range(
        {
            "StartDate": "20261101",
            "StartTime": "0",
            "EndTime": "0",
            "ErrorCode": "",
            "TaskStatus": "",
        },
        NOW,
    )
    assert wrapper == r
    exact = day_range({"StartTime": int(NOW) - 60, "EndTime": int(NOW)}, NOW)
    assert (exact.since, exact.until) == (NOW - 60, NOW + 1)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"StartDate": 20260101}, 1019),
        ({"StartDate": 20261001, "EndDate": 20261124}, 1019),
        ({"StartDate": 20261120, "EndDate": 20261110}, 1001),
        ({"StartDate": 20261131}, 1001),
        ({"StartDate": "abc"}, 1001),
    ],
)
def test_day_range_errors(query: dict[str, object], code: int) -> None:
    with pytest.raises(ApiError) as info:
        day_range(query, NOW)
    assert info.value.code == code


def test_page() -> None:
    assert page({}) == (0, 100)
    assert page({"Marker": "5", "Limit": "500"}) == (5, 100)
    for bad in ({"Marker": -1}, {"Limit": 0}):
        with pytest.raises(ApiError):
            page(bad)


def test_unix_range_and_buckets() -> None:
    r = unix_range({"StartUnixTime": 0, "EndUnixTime": 0, "Granularity": 5, "ResultType": 1}, NOW)
    assert (r.end - r.start, r.granularity, r.aggregate) == (86400, 5, False)
    assert len(buckets(r)) == 288
    daily = UnixRange(int(NOW) - 3 * 86400, int(NOW), 1440, False)
    starts = buckets(daily)
    assert all(datetime.fromtimestamp(s, CST).hour == 0 for s in starts)
    assert len(starts) == 4
    assert bucket_of(NOW - 1, starts) == 3 and bucket_of(starts[0] - 1, starts) is None
    assert buckets(UnixRange(100, 200, 5, True)) == [100]
    for bad in ({"Granularity": 7}, {"ResultType": 3}, {"StartUnixTime": 10, "EndUnixTime": 5}):
        with pytest.raises(ApiError) as info:
            unix_range(bad, NOW)
        assert info.value.code == 1001
    with pytest.raises(ApiError) as info:
        unix_range({"StartUnixTime": int(NOW) - 40 * 86400}, NOW)
    assert info.value.code == 1019
