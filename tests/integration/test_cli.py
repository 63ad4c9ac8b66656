"""The command line as automation uses it: exact output forms and exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support.server import cli


def test_keys_create_json_is_exactly_the_pair(tmp_path: Path) -> None:
    result = cli(tmp_path, "keys", "create", "--user", "ops", "--json")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        r'\{"AccessKeyId": "AK[A-Z0-9]{18}", "SecretAccessKey": "[\w-]{40}"\}\n', result.stdout
    )
    second = json.loads(cli(tmp_path, "keys", "create", "--user", "ops", "--json").stdout)
    listed = cli(tmp_path, "keys", "list").stdout.splitlines()
    assert len(listed) == 2 and f"ops\t{second['AccessKeyId']}" in listed


def test_buckets_and_cp(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "bucket", "create", "media").returncode == 0
    assert cli(data, "bucket", "create", "archive.2026").returncode == 0
    listed = cli(data, "bucket", "list").stdout.splitlines()
    assert listed == ["archive.2026\tdefault", "media\tdefault"]  # name, owner
    bad = cli(data, "bucket", "create", "Bad_Name")
    assert bad.returncode != 0 and "invalid bucket" in bad.stderr

    local = tmp_path / "in.bin"
    local.write_bytes(b"\x00\x01payload")
    assert cli(data, "cp", str(local), "/media/dir/in.bin").returncode == 0
    assert cli(data, "cp", str(local), "/media/dir/").returncode == 0  # keeps the file name
    out = tmp_path / "out.bin"
    assert cli(data, "cp", "/media/dir/in.bin", str(out)).returncode == 0
    assert out.read_bytes() == local.read_bytes()
    assert cli(data, "cp", "/media/dir/in.bin", "/archive.2026/copy.bin").returncode == 0
    assert (data / "buckets" / "archive.2026" / "copy.bin").read_bytes() == local.read_bytes()

    escape = cli(data, "cp", str(local), "/media/../escape.bin")
    assert escape.returncode != 0 and "invalid object key" in escape.stderr
    assert not (data / "buckets" / "escape.bin").exists()
    neither = cli(data, "cp", str(local), "/nobucket/x")
    assert neither.returncode != 0 and "existing bucket" in neither.stderr
    missing = cli(data, "cp", "/media/nothing.bin", str(out))
    assert missing.returncode != 0


def test_doctor_and_config(tmp_path: Path) -> None:
    doctor = cli(tmp_path, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    for name in ("ffmpeg", "ffprobe", "encoders", "child guard", "database", "storage"):
        assert re.search(rf"\[\s*ok\] {name}:", doctor.stdout), doctor.stdout
    config = cli(tmp_path, "config").stdout
    assert "OPENKVS_DATA_DIR" in config and "OPENKVS_CALLBACK_BACKOFF" in config


def test_bad_configuration_fails_loudly(tmp_path: Path) -> None:
    result = cli(tmp_path, "doctor", env={"OPENKVS_WORKERS": "zero"})
    assert result.returncode != 0
    assert "OPENKVS_WORKERS" in result.stdout + result.stderr
