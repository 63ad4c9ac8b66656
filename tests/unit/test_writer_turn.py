"""Writers take turns: threads on a lock, processes on a file lock next to the database."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

from openkvs.store.writer_turn import WriterTurn


def _try_in_child(lock_file: str, answer: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    turn = WriterTurn(Path(lock_file))
    got = turn.acquire(timeout=0.05)
    answer.put(got)
    if got:
        turn.release()


def _other_process_gets_a_turn(lock_file: Path) -> bool:
    answer: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()  # type: ignore[type-arg]
    child = multiprocessing.get_context("spawn").Process(
        target=_try_in_child, args=(str(lock_file), answer)
    )
    child.start()
    got = bool(answer.get(timeout=60))
    child.join(60)
    return got


def test_one_writer_at_a_time_across_processes(tmp_path: Path) -> None:
    lock_file = tmp_path / "openkvs.db-writer"
    turn = WriterTurn(lock_file)
    assert oct(os.stat(lock_file).st_mode & 0o777) == oct(0o600)
    assert turn.acquire(timeout=1)
    assert not turn.acquire(timeout=0.05)  # another thread of this process waits
    assert not _other_process_gets_a_turn(lock_file)  # and so does another process
    turn.release()
    assert _other_process_gets_a_turn(lock_file)
    assert turn.acquire(timeout=1)
    turn.release()


def test_a_forked_child_does_not_share_its_parents_turn(tmp_path: Path) -> None:
    turn = WriterTurn(tmp_path / "openkvs.db-writer")
    assert turn.acquire(timeout=1)
    turn.release()  # the parent has opened the lock file
    assert turn.acquire(timeout=1)  # ... and holds the turn now
    pid = os.fork()
    if pid == 0:  # the child has the same object, a copy of the parent's state
        try:
            turn._lock = threading.Lock()  # a fresh thread lock: no thread of the child holds it
            os._exit(0 if not turn.acquire(timeout=0.05) else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # the parent's file lock kept it out
    turn.release()


def test_without_a_file_only_threads_take_turns() -> None:
    turn = WriterTurn(None)
    assert turn.acquire(timeout=1)
    assert not turn.acquire(timeout=0.01)
    turn.release()
    assert turn.acquire(timeout=1)
    turn.release()
