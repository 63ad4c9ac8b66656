"""The worker pool's wake-ups (worker/pool.py ``_Wakeup``): one worker per wake-up, all on
``everyone``, a later one when asked, and none lost while no worker waits."""

from __future__ import annotations

import threading
import time

from openkvs.worker.pool import _Wakeup

#: Long enough that a waiter that was not woken is still waiting when the test looks.
LONG = 30.0


def _waiters(wakeup: _Wakeup, count: int) -> tuple[list[threading.Thread], list[int]]:
    woken: list[int] = []
    lock = threading.Lock()

    def wait(n: int) -> None:
        wakeup.wait(LONG)
        with lock:
            woken.append(n)

    threads = [threading.Thread(target=wait, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # let them all block
    return threads, woken


def _settle(woken: list[int], expected: int) -> None:
    deadline = time.monotonic() + 10
    while len(woken) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # anything woken by mistake shows up meanwhile


def test_one_wake_up_wakes_one_worker() -> None:
    wakeup = _Wakeup(workers=3)
    threads, woken = _waiters(wakeup, 3)
    wakeup.set()
    _settle(woken, 1)
    assert len(woken) == 1
    wakeup.set(everyone=True)  # and stop() reaches the others
    _settle(woken, 3)
    assert sorted(woken) == [0, 1, 2]
    for thread in threads:
        thread.join(5)


def test_a_wake_up_with_no_worker_waiting_is_kept_up_to_the_number_of_workers() -> None:
    wakeup = _Wakeup(workers=2)
    for _ in range(5):
        wakeup.set()
    started = time.monotonic()
    wakeup.wait(LONG)
    wakeup.wait(LONG)
    assert time.monotonic() - started < LONG / 2  # both were kept
    threads, woken = _waiters(wakeup, 1)  # the other three were not
    assert woken == []
    wakeup.set(everyone=True)
    _settle(woken, 1)
    threads[0].join(5)


def test_a_later_wake_up_comes_after_its_delay_and_not_before() -> None:
    wakeup = _Wakeup(workers=2)
    threads, woken = _waiters(wakeup, 1)
    wakeup.set(after=0.5)
    assert woken == []  # not yet
    _settle(woken, 1)
    assert woken == [0]
    threads[0].join(5)


def test_wait_returns_at_its_timeout_without_a_wake_up() -> None:
    wakeup = _Wakeup(workers=1)
    started = time.monotonic()
    wakeup.wait(0.05)
    assert time.monotonic() - started < LONG / 2
