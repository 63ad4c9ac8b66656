"""The user documentation states what the code does: error codes, settings, actions."""

from __future__ import annotations

import re
from pathlib import Path

from openkvs import config, errors
from openkvs.api.actions import ACTIONS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _table_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2:
            rows[cells[0].strip("`")] = " | ".join(cells[1:]).replace("\\|", "|")
    return rows


def test_every_public_and_task_code_is_listed_with_its_message() -> None:
    text = (DOCS / "error-codes.md").read_text()
    public = text.split("## Public API codes")[1].split("## Gateway errors")[0]
    task = text.split("## Task codes")[1]
    assert _table_rows(public) | {"ErrNum": "ErrMsg"} == {
        "ErrNum": "ErrMsg",
        "---": "---",
        **{str(k): v for k, v in errors.API_MESSAGES.items()},
    }
    listed = _table_rows(task)
    for code, message in errors.TASK_MESSAGES.items():
        assert listed.get(str(code)) == message, code


def _gateway_errors() -> list[type[errors.GatewayError]]:
    found: list[type[errors.GatewayError]] = []
    todo = [errors.GatewayError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_gateway_error_is_listed_with_its_status() -> None:
    text = (DOCS / "error-codes.md").read_text()
    gateway = text.split("## Gateway errors")[1].split("## Task codes")[0]
    rows = {}
    for line in gateway.splitlines():
        match = re.match(r"\| (\d{3}) \| `(\w+)` \|", line)
        if match:
            rows[match.group(2)] = int(match.group(1))
    for cls in _gateway_errors():
        assert rows.get(cls.code) == cls.status, cls.code


def test_every_setting_is_in_the_user_guide() -> None:
    guide = (DOCS / "user-guide.md").read_text()
    for name, _default, _description in config.describe():
        assert f"`{name}`" in guide, name


def test_every_action_has_a_reference_section() -> None:
    reference = (DOCS / "reference.md").read_text()
    headings = set(re.findall(r"^### (\w+)", reference, flags=re.MULTILINE))
    assert set(ACTIONS) <= headings, sorted(set(ACTIONS) - headings)
