"""A task's whole story in the logs: every line a worker logs while it runs the task
carries its TaskID and user, and ``openkvs logs TASKID`` prints them all in order (from the
JSON-lines files of ``serve``), including each callback attempt."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.conftest import BUCKET, Deployment
from tests.support.media import make_video
from tests.support.receiver import CallbackReceiver
from tests.support.server import cli

PRESET = "logs_small"
PARAM = {"f": "mp4", "VIDEO": {"width": 96, "height": 64}, "AUDIO": {"ab": "48k"}}


def test_openkvs_logs_tells_a_tasks_story(kvs: Deployment, tmp_path: Path) -> None:
    reply = kvs.client.preset(Preset=PRESET, PresetType="avtrans", Param=PARAM)
    assert reply["ErrNum"] in (0, 1201), reply
    source = kvs.upload(make_video(tmp_path, "story", seconds=2, size="160x120"), "in/story.mp4")
    with CallbackReceiver() as receiver:
        reply = kvs.client.create_task(
            Preset=PRESET,
            SrcInfo=[{"path": source}],
            DstBucket=BUCKET,
            DstObjectKey="out/story.mp4",
            CbUrl=receiver.url,
        )
        assert reply["ErrNum"] == 0, reply
        task_id = reply["TaskID"]
        assert kvs.wait_task(task_id)["TaskStatus"] == "succ"
        receiver.wait_for(1)
    # The delivery's line is written just after the receiver answered: look until it is.
    for _ in range(100):
        shown = cli(kvs.data_dir, "logs", task_id, "--json")
        assert shown.returncode == 0, shown.stderr
        entries = [json.loads(line) for line in shown.stdout.splitlines()]
        if any(e["event"] == "callback_delivered" for e in entries):
            break
    events = [e["event"] for e in entries]
    for expected in (
        "task_claimed",
        "task_command",
        "task_progress",
        "task_uploaded",
        "task_finished",
        "callback_delivered",
    ):
        assert expected in events, events
    order = [events.index(e) for e in ("task_claimed", "task_uploaded", "task_finished")]
    assert order == sorted(order)
    assert all(e["task_id"] == task_id for e in entries)
    worker_lines = [e for e in entries if e["event"] != "callback_delivered"]
    assert all(e.get("user") == "default" for e in worker_lines), worker_lines
    command = next(e for e in entries if e["event"] == "task_command")["command"]
    assert command.startswith("ffmpeg ") and source in command
    text = cli(kvs.data_dir, "logs", task_id)
    assert text.returncode == 0
    assert len(text.stdout.splitlines()) >= len(entries)
    assert "task_finished" in text.stdout and task_id in text.stdout


def test_openkvs_logs_of_an_unknown_task_says_so(kvs: Deployment) -> None:
    shown = cli(kvs.data_dir, "logs", "0" * 40)
    assert shown.returncode == 1
    assert "no log lines of task" in shown.stderr
