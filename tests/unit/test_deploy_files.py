"""The deployment files say only what openkvs understands: compose.yaml, the Dockerfile, the
systemd units and the example settings name real settings and real commands.

Docker cannot run here, so these files are checked statically: every ``OPENKVS_*`` variable
is a setting (``openkvs config``) and its value is accepted; every ``openkvs ...`` command
line parses with the real command-line interface; stop timeouts leave room for the drain.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from openkvs import config
from openkvs.cli import main
from openkvs.store.secrets import new_key_text

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
ENV_EXAMPLE = ROOT / "deploy" / "openkvs.env.example"
SETTINGS = {name for name, _default, _description in config.describe()}


def _parses(argv: list[str]) -> click.Command:
    """The command ``openkvs argv...`` names, after its options were parsed as a real run
    would parse them (``click.UsageError`` when it would not start); nothing is run."""
    assert argv and Path(argv[0]).name == "openkvs", argv
    command: click.Command = main
    ctx = click.Context(main, info_name="openkvs")
    args = list(argv[1:])
    while isinstance(command, click.Group):  # the groups here take no options of their own
        name, found, args = command.resolve_command(ctx, args)
        assert found is not None and name is not None, f"no command in {argv}"
        command = found
        ctx = click.Context(command, info_name=name, parent=ctx)
    command.make_context(str(ctx.info_name), args, parent=ctx.parent)
    return command


def _filled(key: str, value: str) -> str:
    """``value`` with compose interpolations and placeholders replaced by usable values."""
    if key == "OPENKVS_MASTER_KEY":
        return new_key_text()
    value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)  # ${VAR:-default}: the default
    value = re.sub(r"\$\{[^}]*\}", "placeholder", value)  # ${VAR:?error}: to be given
    return value.replace("CHANGE-ME", "placeholder")


def _check_settings(values: dict[str, str], where: str) -> None:
    unknown = sorted(set(values) - SETTINGS)
    assert not unknown, f"{where}: not openkvs settings: {unknown}"
    config.load({k: _filled(k, v) for k, v in values.items()})  # ConfigError when refused


def _seconds(text: str) -> float:
    """A compose duration (``45s``, ``1m30s``) or a systemd time span (``90``, ``2min``)."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text):
        total += float(number) * units[unit]
    return total


# -- compose.yaml ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def _openkvs_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image", "").startswith("openkvs") or "build" in service
    }


def test_compose_runs_the_fleet_the_guide_describes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "minio", "setup", "api", "worker-1", "worker-2"} <= set(services)
    commands = {name: s["command"][1] for name, s in _openkvs_services(compose).items()}
    assert commands == {
        "setup": "bucket",
        "api": "serve",
        "worker-1": "worker",
        "worker-2": "worker",
    }
    assert "--no-workers" in services["api"]["command"]
    for name in ("api", "worker-1", "worker-2"):
        needs = services[name]["depends_on"]
        assert needs["setup"]["condition"] == "service_completed_successfully"
        assert needs["postgres"]["condition"] == "service_healthy"


def test_compose_commands_are_openkvs_commands(compose: dict[str, Any]) -> None:
    for name, service in _openkvs_services(compose).items():
        command = _parses(list(service["command"]))
        assert command.name in {"serve", "worker", "create"}, name


def test_compose_settings_are_openkvs_settings(compose: dict[str, Any]) -> None:
    for name, service in _openkvs_services(compose).items():
        env = {k: str(v) for k, v in service["environment"].items()}
        assert env["OPENKVS_STORAGE"] == "s3"
        assert env["OPENKVS_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["OPENKVS_MASTER_KEY"].startswith("${OPENKVS_MASTER_KEY:?")  # no key here
        _check_settings(env, f"compose service {name}")


def test_compose_stops_workers_after_their_drain(compose: dict[str, Any]) -> None:
    for name, service in _openkvs_services(compose).items():
        if name == "setup":
            continue
        drain = float(service["environment"]["OPENKVS_DRAIN_SECONDS"])
        assert _seconds(service["stop_grace_period"]) > drain, name


def test_compose_passwords_come_from_the_environment(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    for variable in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "OPENKVS_MASTER_KEY"):
        assert f"${{{variable}:?" in text
    services = compose["services"]
    assert services["minio"]["environment"]["MINIO_ROOT_PASSWORD"].startswith("${")
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${")


# -- Dockerfile --------------------------------------------------------------------------


def test_dockerfile_installs_ffmpeg_and_runs_an_openkvs_command() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM \S+-slim", text, flags=re.MULTILINE)
    assert "apt-get install -y --no-install-recommends ffmpeg" in text
    assert 'pip install --no-cache-dir ".[postgres]"' in text
    [cmd] = re.findall(r"^CMD (.+)$", text, flags=re.MULTILINE)
    assert _parses(json.loads(cmd)).name == "serve"
    env = dict(re.findall(r"(OPENKVS_\w+)=(\S+)", text))
    _check_settings(env, "Dockerfile")


# -- systemd -----------------------------------------------------------------------------


def _unit(path: Path) -> list[tuple[str, str]]:
    """(key, value) of every setting line of a unit file, in order (keys may repeat)."""
    pairs = []
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            pairs.append((key.strip(), value.strip()))
    return pairs


def test_there_are_an_api_unit_and_a_templated_worker_unit() -> None:
    assert [p.name for p in UNITS] == ["openkvs-api.service", "openkvs-worker@.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_units_start_openkvs_commands_and_drain_on_stop(unit: Path) -> None:
    pairs = _unit(unit)
    values = dict(pairs)
    [start] = [v for k, v in pairs if k == "ExecStart"]
    command = _parses(shlex.split(start))
    assert command.name == ("serve" if "api" in unit.name else "worker")
    assert "--no-workers" in start or command.name == "worker"
    assert ("EnvironmentFile", "/etc/openkvs/openkvs.env") in pairs
    # SIGTERM to openkvs only: ffmpeg children are stopped by openkvs, not by systemd.
    assert (values["KillMode"], values["KillSignal"]) == ("mixed", "SIGTERM")
    settings = dict(
        v.split("=", 1) for k, v in pairs if k == "Environment" and v.startswith("OPENKVS_")
    )
    _check_settings(settings, unit.name)
    drain = float(_env_example()["OPENKVS_DRAIN_SECONDS"])
    assert _seconds(values["TimeoutStopSec"]) > drain


def test_the_worker_unit_is_a_template_with_its_own_settings_file() -> None:
    pairs = _unit(ROOT / "deploy" / "systemd" / "openkvs-worker@.service")
    assert ("EnvironmentFile", "-/etc/openkvs/worker-%i.env") in pairs


# -- the example settings ----------------------------------------------------------------


def _env_example(*, commented: bool = False) -> dict[str, str]:
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(#?)(OPENKVS_\w+)=(.*)", line.strip())
        if match and (commented or not match.group(1)):
            found[match.group(2)] = match.group(3)
    return found


def test_the_example_settings_are_openkvs_settings() -> None:
    active = _env_example()
    assert {"OPENKVS_DATABASE_URL", "OPENKVS_STORAGE", "OPENKVS_MASTER_KEY"} <= set(active)
    assert active["OPENKVS_MASTER_KEY"] == "CHANGE-ME"  # no real key in the repository
    _check_settings(active, ENV_EXAMPLE.name)
    _check_settings(_env_example(commented=True), f"{ENV_EXAMPLE.name} (commented lines)")
