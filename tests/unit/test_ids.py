"""The UTC+8 times of the API (service/ids.py)."""

from __future__ import annotations

from datetime import datetime

import pytest

from openkvs.service.ids import CST, cst_text


@pytest.mark.parametrize("ts", [0, 0.0, 1764633600.0, 1764633599.9999996, 1764633599.4, 1.5])
def test_cst_text_is_the_utc8_wall_clock_to_the_second(ts: float) -> None:
    expected = datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d %H:%M:%S")
    assert cst_text(ts) == expected
    assert cst_text(ts) == expected  # the remembered answer is the same


def test_cst_text_known_values() -> None:
    assert cst_text(None) == ""
    assert cst_text(0) == "1970-01-01 08:00:00"
    assert cst_text(1764633599.9999996) == "2025-12-02 08:00:00"  # rounded to the microsecond
