"""ConcurrencyLimit (service/concurrency.py): refused at once, never queued."""

from __future__ import annotations

import pytest

from openkvs.errors import Throttling
from openkvs.service.concurrency import ConcurrencyLimit


def test_per_user_and_total_limits() -> None:
    limit = ConcurrencyLimit(total=3, per_user=2, what="probes")
    with limit.slot(1), limit.slot(1):
        with pytest.raises(Throttling, match="probes of this user"), limit.slot(1):
            pass
        with limit.slot(2):
            assert limit.running == 3
            with pytest.raises(Throttling, match="at most 3"), limit.slot(3):
                pass
        with limit.slot(3):  # user 2's place is free again
            pass
    assert limit.running == 0


def test_a_failing_block_gives_its_place_back() -> None:
    limit = ConcurrencyLimit(total=1, per_user=1)
    with pytest.raises(RuntimeError), limit.slot(1):
        raise RuntimeError("probe failed")
    with limit.slot(1):
        assert limit.running == 1
    assert limit.running == 0


def test_throttling_is_the_gateways_429() -> None:
    assert (Throttling.status, Throttling.code) == (429, "Throttling")
    with pytest.raises(ValueError):
        ConcurrencyLimit(total=0, per_user=1)
