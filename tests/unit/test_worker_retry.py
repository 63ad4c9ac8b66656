"""``until_written``: a write tried again through a database outage, and only then."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import exc as sa_exc

from openkvs.store.outage import OutageWatch
from openkvs.worker.retry import GaveUp, until_written


class _Down(Exception):
    pass


def _outage() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("UPDATE tasks", {}, _Down("connection refused"))


def _flaky(failures: list[BaseException], value: bool = True) -> object:
    def write() -> bool:
        if failures:
            raise failures.pop(0)
        return value

    return write


def test_an_outage_is_waited_out() -> None:
    watch = OutageWatch("test")
    stop = threading.Event()
    write = _flaky([_outage(), _outage(), _outage()])
    value, retries = until_written(
        write,
        watch=watch,
        stop=stop,
        grace=1,
        task_id="t",
        what="finish",  # type: ignore[arg-type]
    )
    assert (value, retries) == (True, 3)
    assert not watch.down  # the success said so


def test_another_error_is_raised_at_once() -> None:
    write = _flaky([ValueError("bug"), _outage()])
    with pytest.raises(ValueError):
        until_written(
            write,  # type: ignore[arg-type]
            watch=OutageWatch("test"),
            stop=threading.Event(),
            grace=1,
            task_id="t",
            what="finish",
        )


def test_a_stopping_pool_gives_up_after_its_grace() -> None:
    stop = threading.Event()
    stop.set()
    slept: list[float] = []
    now = [1000.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def always_down() -> bool:
        raise _outage()

    with pytest.raises(GaveUp):
        until_written(
            always_down,
            watch=OutageWatch("test"),
            stop=stop,
            grace=2.0,
            task_id="t",
            what="finish",
            sleep=sleep,
            clock=lambda: now[0],
        )
    assert len(slept) > 1 and sum(slept) >= 2.0  # tried again until the grace ran out
