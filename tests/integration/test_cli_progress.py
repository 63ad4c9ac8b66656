"""``openkvs task submit --wait`` progress and the submission options, against ``serve``.

The CLI writes the task into the data folder and the running server runs it. Its stderr is
a pipe here, so ``--wait`` prints one plain line per change of GetTaskByTaskID's
``TaskStatus``/``ProgressStatus``/``Progress``.
"""

from __future__ import annotations

import itertools
import json
import os
import pty
import re
import subprocess
import sys

import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.media import make_audio
from tests.support.receiver import CallbackReceiver
from tests.support.server import child_env, cli

#: The CLI checks callback URLs at creation with its own settings: allow the loopback receiver.
ALLOW = {"OPENKVS_CALLBACK_ALLOW": "127.0.0.0/8"}
LINE = re.compile(r"(init|exec|succ|fail)(?: (transcoding|uploading))? (\d{1,3})%")


@pytest.fixture(scope="module")
def long_src(kvs: Deployment, tmp_path_factory: pytest.TempPathFactory) -> str:
    audio = make_audio(tmp_path_factory.mktemp("cli_long"), "long", fmt="wav", seconds=60)
    return kvs.upload(audio, "in/cli/long.wav")


def test_submit_wait_shows_progress_lines_and_options_reach_the_task(
    kvs: Deployment, long_src: str
) -> None:
    assert kvs.client.update_pipeline(PipelineName="cli_q", State="Active")["ErrNum"] == 0
    with CallbackReceiver() as rx:
        ext = {"format": "peaks", "Callback": {"progress_cburl": rx.url, "progress_interval": 1}}
        run = cli(
            kvs.data_dir,
            "task", "submit", "--preset", "wave", "--src", long_src,
            "--dst", "/media/out/cli/long.json", "--points", "50",
            "--acl", "private", "--ext-param", json.dumps(ext), "--pipeline", "cli_q",
            "--wait",
            env=ALLOW,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        progress = [r.json for r in rx.wait_for(2, timeout=30)]
    out = run.stdout.splitlines()
    task_id = out[0]
    assert out[-1] == 'succ [{"dstpath": "out/cli/long.json"}]'

    lines = run.stderr.splitlines()
    parsed = [LINE.fullmatch(line) for line in lines]
    assert all(parsed), lines
    assert lines[-1] == "succ 100%"
    assert all(a != b for a, b in itertools.pairwise(lines)), lines  # on change only
    numbers = [int(m.group(3)) for m in parsed if m]
    assert numbers == sorted(numbers), lines
    assert all(m.group(2) is None or m.group(1) == "exec" for m in parsed if m), lines

    info = kvs.client.get_task_by_task_id(TaskID=task_id)["TaskInfo"]
    assert (info["DstAcl"], info["Pipeline"]) == ("private", "cli_q")
    assert json.loads(info["ExtParam"]) == ext
    assert {p["Status"] for p in progress} == {2}
    assert progress[0]["Details"] == {"status": "transcoding", "progress": 0}
    doc = json.loads((kvs.data_dir / "buckets" / BUCKET / "out/cli/long.json").read_text())
    assert doc["version"] == 2  # ExtParam format=peaks

    shown = cli(kvs.data_dir, "task", "show", task_id)
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert {key: detail.get(key) for key in info} == info  # what GetTaskByTaskID says
    assert "-c:a pcm_s16le" in detail["Command"]  # the decoder that ran
    assert detail["ProgressStatus"] == ""  # finished


def test_submit_dst_dir_and_bad_options(kvs: Deployment, long_src: str) -> None:
    assert kvs.client.preset(Preset="cli_probe", PresetType="avinfo", Param={})["ErrNum"] == 0
    run = cli(
        kvs.data_dir, "task", "submit", "--preset", "cli_probe", "--src", long_src,
        "--dst-dir", "/media/probe/", "--wait",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    info = kvs.client.get_task_by_task_id(TaskID=run.stdout.splitlines()[0])["TaskInfo"]
    assert (info["DstBucket"], info["DstDir"], info["TaskStatus"]) == (BUCKET, "probe/", "succ")

    def submit(*extra: str) -> tuple[int, str]:
        result = cli(
            kvs.data_dir, "task", "submit", "--preset", "wave", "--src", long_src,
            "--dst", "/media/out/x.json", *extra,
        )  # fmt: skip
        return result.returncode, result.stderr

    code, err = submit("--ext-param", "not json")
    assert code == 1 and "1018" in err
    code, err = submit("--ext-param", json.dumps({"Callback": {"progress_cburl": "ftp://x/"}}))
    assert code == 1 and "progress_cburl" in err
    code, err = submit("--pipeline", "no_such_q")
    assert code == 1 and "1022" in err
    code, err = submit("--acl", "world")
    assert code == 2 and "--acl" in err
    code, err = submit("--dst-dir", "/other/dir/")
    assert code == 2 and "same bucket" in err


def test_submit_wait_draws_a_bar_on_a_terminal(kvs: Deployment, long_src: str) -> None:
    leader, follower = pty.openpty()  # stderr is a terminal, stdout a pipe
    try:
        run = subprocess.run(
            [sys.executable, "-m", "openkvs", "task", "submit", "--preset", "wave",
             "--src", long_src, "--dst", "/media/out/cli/tty.json", "--wait"],
            env=child_env(kvs.data_dir),
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=120,
            check=False,
        )  # fmt: skip
        os.close(follower)
        follower = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert run.returncode == 0, drawn
    assert run.stdout.splitlines()[-1] == 'succ [{"dstpath": "out/cli/tty.json"}]'
    text = drawn.decode()
    frames = [frame.strip() for frame in text.split("\r") if frame.strip()]
    assert frames[-1] == f"[{'#' * 30}] succ 100%", frames  # redrawn in place, then a newline
    assert all(re.fullmatch(r"\[[#.]{30}\] .*", frame) for frame in frames), frames
    assert text.endswith("\n")
