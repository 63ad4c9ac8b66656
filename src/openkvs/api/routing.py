"""Which action a request names, and its parameters (spec §1.2, §1.3)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from openkvs.errors import ApiError, InvalidAction, InvalidVersion

API_VERSION = "2017-01-01"

#: Query parameters that carry the action, version or signature, never action parameters.
_TRANSPORT = {"Action", "Version"}


def query_params(raw_query: str) -> dict[str, str]:
    """The query as a dict (the first value of a repeated key wins); blanks kept."""
    out: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        out.setdefault(key, value)
    return out


def resolve_action(
    query: Mapping[str, str], headers: Mapping[str, str], known: Mapping[str, object]
) -> str:
    """The action: ``?Action=``, else ``X-Action``, else ``X-Amz-Target: kvs.<Action>``;
    unknown → InvalidAction; a ``Version`` other than 2017-01-01 → InvalidVersion."""
    action = query.get("Action") or headers.get("x-action") or ""
    if not action:
        target = headers.get("x-amz-target", "")
        service, _, name = target.partition(".")
        if service == "kvs":
            action = name
    if not action:
        raise InvalidAction("No action given: use ?Action=, X-Action or X-Amz-Target.")
    if action not in known:
        raise InvalidAction(f"The action {action} is not valid for this web service.")
    version = query.get("Version") or headers.get("x-version") or API_VERSION
    if version != API_VERSION:
        raise InvalidVersion(f"Version {version} is not supported; use {API_VERSION}.")
    return action


def action_params(method: str, query: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """Query parameters, with a POST's JSON body merged on top (the body wins)."""
    params: dict[str, Any] = {
        k: v for k, v in query.items() if k not in _TRANSPORT and not k.startswith("X-Amz-")
    }
    if method == "POST" and body.strip():
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise ApiError(1001, f"the request body is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ApiError(1001, "the request body must be a JSON object")
        params.update(parsed)
    return params
