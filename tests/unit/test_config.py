"""Settings: defaults, environment variables, loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from openkvs.config import ConfigError, describe, load


def test_defaults() -> None:
    s = load({})
    assert s.data_dir == Path("./openkvs-data")
    assert s.region == "cn-beijing-6"
    assert s.lease_seconds == 60
    assert s.callback_backoff == (10, 60, 300)
    assert s.workers >= 1
    assert s.sqlalchemy_url.startswith("sqlite:///") and s.sqlalchemy_url.endswith("openkvs.db")


def test_environment() -> None:
    s = load(
        {
            "OPENKVS_DATA_DIR": "/srv/kvs",
            "OPENKVS_WORKERS": "3",
            "OPENKVS_LEASE_SECONDS": "5",
            "OPENKVS_CALLBACK_BACKOFF": "0.5, 1,2",
            "OPENKVS_DATABASE_URL": "postgresql://x/y",
            "OPENKVS_REGION": "cn-shanghai-2",
        }
    )
    assert s.data_dir == Path("/srv/kvs") and s.workers == 3 and s.lease_seconds == 5
    assert s.callback_backoff == (0.5, 1, 2)
    assert s.sqlalchemy_url == "postgresql://x/y" and s.region == "cn-shanghai-2"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPENKVS_WORKERS", "0"),
        ("OPENKVS_WORKERS", "many"),
        ("OPENKVS_LEASE_SECONDS", "-1"),
        ("OPENKVS_CALLBACK_BACKOFF", ""),
        ("OPENKVS_CALLBACK_BACKOFF", "1,-2"),
        ("OPENKVS_LOG_JSON", "perhaps"),
    ],
)
def test_bad_values_fail_loudly(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load({name: value})


def test_every_setting_is_described() -> None:
    rows = describe()
    assert all(r[0].startswith("OPENKVS_") and r[2] for r in rows)
    assert {
        "OPENKVS_DATA_DIR",
        "OPENKVS_REGION",
        "OPENKVS_WORKERS",
        "OPENKVS_LEASE_SECONDS",
        "OPENKVS_CALLBACK_BACKOFF",
        "OPENKVS_DATABASE_URL",
    } <= {r[0] for r in rows}
