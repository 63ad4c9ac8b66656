"""A newcomer's first hour: clear failures at start, a doctor that changes nothing, and a
clear answer for KVS actions that are not built yet."""

from __future__ import annotations

import socket
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support.server import child_env, cli

ROOT = Path(__file__).resolve().parents[2]


def test_serve_on_a_busy_port_fails_before_saying_it_serves(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "openkvs", "serve", "--port", str(port)],
            env=child_env(tmp_path / "data", {"OPENKVS_WORKERS": "1"}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "serving" not in done.stderr


def test_doctor_never_creates_the_data_folder(tmp_path: Path) -> None:
    data_dir = tmp_path / "nothing-here"
    result = cli(data_dir, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "does not exist yet" in result.stdout
    assert not data_dir.exists()


def test_doctor_reports_an_existing_deployment_without_changing_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert cli(data_dir, "keys", "create").returncode == 0
    before = sorted(p.name for p in data_dir.iterdir())
    result = cli(data_dir, "doctor")
    assert result.returncode == 0, result.stdout
    for check in ("data key", "database", "storage"):
        assert f"[  ok] {check}:" in result.stdout
    assert sorted(p.name for p in data_dir.iterdir()) == before


def test_doctor_fails_on_a_missing_data_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert cli(data_dir, "keys", "create").returncode == 0
    (data_dir / "openkvs.key").unlink()
    result = cli(data_dir, "doctor")
    assert result.returncode == 1
    assert "[FAIL] data key:" in result.stdout
    assert not (data_dir / "openkvs.key").exists()


def test_package_metadata_uses_an_spdx_license_string() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert isinstance(project["license"], str)
