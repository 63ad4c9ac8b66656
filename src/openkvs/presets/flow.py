"""The spec of a CreateFlowTask task (spec §2.7): how many FlowData items it runs.

A flow has no preset of its own: each item stores its own preset snapshot, spec and
options (``service/flows.py``); the flow's spec only says how many there are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FlowSpec:
    items: int = 0


def parse(param: Mapping[str, Any]) -> FlowSpec:
    return FlowSpec(int(param.get("items", 0)))
