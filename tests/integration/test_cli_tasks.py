"""``openkvs task`` and ``openkvs preset`` against a running service's data folder."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.conftest import Deployment
from tests.support.media import make_audio
from tests.support.server import cli


def test_task_submit_wait_show_list(kvs: Deployment, tmp_path: Path) -> None:
    src = kvs.upload(make_audio(tmp_path, "cli", fmt="ogg", seconds=2), "in/cli.ogg")
    run = cli(
        kvs.data_dir,
        "task",
        "submit",
        "--preset",
        "wave",
        "--src",
        src,
        "--dst",
        "/media/out/cli.json",
        "--points",
        "20",
        "--wait",
    )
    assert run.returncode == 0, run.stderr
    task_id, result = run.stdout.splitlines()[0], run.stdout.splitlines()[-1]
    assert len(task_id) == 40
    assert result == 'succ [{"dstpath": "out/cli.json"}]'
    doc = json.loads((kvs.data_dir / "buckets" / "media" / "out" / "cli.json").read_text())
    assert doc["points"] == 20

    shown = json.loads(cli(kvs.data_dir, "task", "show", task_id).stdout)
    assert (shown["TaskID"], shown["TaskStatus"], shown["Preset"]) == (task_id, "succ", "wave")
    # The SDK user sees the task the CLI submitted (same user, "default").
    assert kvs.client.get_task_by_task_id(TaskID=task_id)["TaskInfo"]["TaskStatus"] == "succ"

    listed = cli(kvs.data_dir, "task", "list", "--status", "succ")
    assert listed.returncode == 0 and task_id in listed.stdout

    failed = cli(kvs.data_dir, "task", "submit", "--preset", "missing_one", "--src", src)
    assert failed.returncode != 0 and "1005" in failed.stderr
    unknown = cli(kvs.data_dir, "task", "show", "0" * 40)
    assert unknown.returncode != 0 and "1200" in unknown.stderr


def test_task_submit_avinfo_failure_is_reported(kvs: Deployment, tmp_path: Path) -> None:
    assert kvs.client.preset(Preset="cli_info", PresetType="avinfo", Param={})["ErrNum"] == 0
    junk = tmp_path / "junk.dat"
    junk.write_bytes(bytes(range(256)) * 64)  # no demuxer recognises this
    src = kvs.upload(junk, "in/junk.dat")
    run = cli(kvs.data_dir, "task", "submit", "--preset", "cli_info", "--src", src, "--wait")
    assert run.returncode != 0
    assert "task failed: 3150" in run.stderr


def test_preset_list_and_show(kvs: Deployment) -> None:
    param = {"f": "mp4", "VIDEO": {"vb": "900k"}}
    assert (
        kvs.client.preset(
            Preset="cli_hd", PresetType="avtrans", Description="for the cli", Param=param
        )["ErrNum"]
        == 0
    )
    listed = cli(kvs.data_dir, "preset", "list")
    assert listed.returncode == 0
    assert any(line.split()[:2] == ["cli_hd", "avtrans"] for line in listed.stdout.splitlines())
    shown = json.loads(cli(kvs.data_dir, "preset", "show", "cli_hd").stdout)
    assert shown["Param"] == param and shown["Description"] == "for the cli"
    missing = cli(kvs.data_dir, "preset", "show", "nope_nope")
    assert missing.returncode != 0 and "1200" in missing.stderr
