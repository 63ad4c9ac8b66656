"""``openkvs.logs``: task fields on a thread's lines, the per-process JSON-lines file, and
finding a task's lines again."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openkvs import logs

TASK = "a" * 40
PART = "b" * 40


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logs.setup(folder=tmp_path / "logs")
    yield tmp_path / "logs"
    for handler in root.handlers:
        handler.close()
    root.handlers[:], root.level = saved


def _lines(folder: Path) -> list[dict]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return [json.loads(line) for path in folder.iterdir() for line in path.read_text().splitlines()]


def test_lines_in_a_task_context_carry_its_fields(folder: Path) -> None:
    log = logging.getLogger("openkvs.test")
    with logs.task_context(TASK, "alice"):
        log.info("inside", extra={"step": 1})
        log.info("own", extra={"task_id": "c" * 40})  # a line naming a task keeps its own
    log.info("outside")
    entries = {e["event"]: e for e in _lines(folder)}
    assert entries["inside"]["task_id"] == TASK and entries["inside"]["user"] == "alice"
    assert entries["inside"]["step"] == 1
    assert entries["own"]["task_id"] == "c" * 40
    assert "task_id" not in entries["outside"]


def test_the_context_is_the_threads_own(folder: Path) -> None:
    log = logging.getLogger("openkvs.test")
    other = threading.Thread(target=lambda: log.info("other thread"))
    with logs.task_context(TASK, "alice"):
        other.start()
        other.join()
    entry = next(e for e in _lines(folder) if e["event"] == "other thread")
    assert "task_id" not in entry


def test_the_file_is_named_by_host_and_process(folder: Path) -> None:
    logging.getLogger("openkvs.test").info("x")
    (path,) = list(folder.iterdir())
    assert path.name.endswith(f"-{os.getpid()}.jsonl")
    assert path.stat().st_mode & 0o077 == 0


def test_task_lines_finds_the_task_and_its_parts_in_order(folder: Path) -> None:
    log = logging.getLogger("openkvs.test")
    with logs.task_context(TASK, "alice"):
        log.info("first")
    with logs.task_context(PART, "alice", parent_id=TASK):
        log.info("part line")
    with logs.task_context("d" * 40, "bob"):
        log.info("someone else")
    log.info("last", extra={"task_id": TASK})
    for handler in logging.getLogger().handlers:
        handler.flush()
    found = [e["event"] for e in logs.task_lines(folder, TASK)]
    assert found == ["first", "part line", "last"]
    assert "alice" in logs.as_text(logs.task_lines(folder, TASK)[0])


def test_prune_removes_only_old_files(tmp_path: Path) -> None:
    old, new = tmp_path / "h-1.jsonl", tmp_path / "h-2.jsonl.1"
    old.write_text("{}\n")
    new.write_text("{}\n")
    week_ago = time.time() - 8 * 86400
    os.utime(old, (week_ago, week_ago))
    assert logs.prune(tmp_path, 7) == 1
    assert not old.exists() and new.exists()
