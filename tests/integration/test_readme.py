"""The README's worked example runs as written: its receiver, its curl calls and its SDK
script, against a real server (only the two ports are changed to free ones)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.support.server import ServerProcess, child_env, free_port

ROOT = Path(__file__).resolve().parents[2]


def _example(name: str) -> str:
    """The fenced block that follows ``<!-- worked-example: NAME -->`` in the README."""
    text = (ROOT / "README.md").read_text()
    match = re.search(
        rf"<!-- worked-example: {name} -->\n```\w+\n(.*?)\n```", text, flags=re.DOTALL
    )
    assert match, f"README has no worked example {name!r}"
    return match.group(1)


def _wait_for_line(path: Path, pattern: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text())
        if found:
            return found.group(0)
        time.sleep(0.1)
    raise AssertionError(f"no line matching {pattern!r} in {path.read_text()!r}")


@pytest.mark.slow
def test_the_worked_example_runs_as_written(tmp_path: Path) -> None:
    data_dir = tmp_path / "openkvs-data"
    data_dir.mkdir()
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    receiver_port = free_port()
    env = {"OPENKVS_CALLBACK_ALLOW": "127.0.0.0/8", "OPENKVS_WORKERS": "1"}
    with ServerProcess(data_dir, env) as server:

        def adapt(code: str) -> str:
            code = code.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
            code = code.replace('("127.0.0.1", 9000)', f'("127.0.0.1", {receiver_port})')
            return code.replace("127.0.0.1:9000", f"127.0.0.1:{receiver_port}")

        shell_env = child_env(data_dir)
        received = tmp_path / "received.txt"
        with received.open("w") as out:
            receiver = subprocess.Popen(
                ["bash", "-c", adapt(_example("receiver"))], stdout=out, env=shell_env
            )
        try:
            curl = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", adapt(_example("curl"))],
                cwd=tmp_path,
                env=shell_env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert curl.returncode == 0, curl.stdout + curl.stderr
            assert '{"ErrNum":0,"ErrMsg":"success"}' in curl.stdout
            task = re.search(r'"TaskID":"(\w{40})","IsFlow"', curl.stdout)
            assert task, curl.stdout
            assert '"TaskStatus":"succ"' in curl.stdout, curl.stdout
            line = _wait_for_line(received, rf"msg_{task.group(1)}_\d+ .*\n")
            assert '"Status":3' in line and '"errnum":0' in line, line

            sdk = subprocess.run(
                [sys.executable, "-c", adapt(_example("sdk"))],
                cwd=tmp_path,
                env=shell_env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert sdk.returncode == 0, sdk.stdout + sdk.stderr
            assert sdk.stdout.startswith('succ {"streams":'), sdk.stdout
            _wait_for_line(received, r"msg_\w{40}_\d+ .*\n.*msg_\w{40}_\d+ ")
        finally:
            receiver.kill()
            receiver.wait()
