"""Reading action parameters: presence, types and the normalisations of spec §1.3.

Query values arrive as strings and JSON bodies mix numbers and strings, so every reader
accepts both where the documented type allows; an empty string means "not given".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from openkvs.errors import ApiError, invalid, missing

Params = Mapping[str, Any]


def given(params: Params, name: str) -> bool:
    value = params.get(name)
    return value is not None and value != ""


def required_str(params: Params, name: str) -> str:
    if not given(params, name):
        raise missing(name)
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(name, "must be a string")
    return str(value)


def optional_str(params: Params, name: str, default: str = "") -> str:
    return required_str(params, name) if given(params, name) else default


#: Integers beyond this are refused: they fit neither JSON numbers exactly nor the store.
MAX_INT = 2**53


def to_int(name: str, value: Any) -> int:
    """An integer parameter given as a number or a numeric string; 1001 otherwise, and for
    values beyond ±2**53."""
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and len(value) <= 32:
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise invalid(name, f"must be an integer, got {value!r:.60}")
    if abs(number) > MAX_INT:
        raise invalid(name, f"is out of range, got {number:.3g}")
    return number


def required_int(params: Params, name: str, lo: int, hi: int) -> int:
    if not given(params, name):
        raise missing(name)
    value = to_int(name, params[name])
    if not lo <= value <= hi:
        raise invalid(name, f"must be between {lo} and {hi}, got {value}")
    return value


def flag(params: Params, name: str) -> bool:
    """A 0/1 flag such as ``IsTop`` (int or string); absent means 0."""
    if not given(params, name):
        return False
    value = to_int(name, params[name])
    if value not in (0, 1):
        raise invalid(name, "must be 0 or 1")
    return value == 1


def acl(params: Params, name: str = "DstAcl") -> str:
    value = optional_str(params, name, "public-read")
    if value not in ("private", "public-read"):
        raise invalid(name, "must be private or public-read")
    return value


def callback_url(params: Params, name: str = "CbUrl") -> str:
    value = optional_str(params, name)
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid(name, "must be an http:// or https:// URL")
    return value


def ext_param(params: Params, name: str = "ExtParam") -> tuple[str, dict[str, Any]]:
    """(raw string as submitted, parsed object). A JSON string or, tolerated, an object."""
    if not given(params, name):
        return "", {}
    value = params[name]
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")), value
    if not isinstance(value, str):
        raise ApiError(1018, f"{name} must be a JSON object string")
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ApiError(1018, f"{name} is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ApiError(1018, f"{name} must be a JSON object")
    return value, parsed


def case_insensitive_get(item: Mapping[str, Any], name: str) -> Any:
    """``SrcInfo`` items come as ``path``/``Path`` depending on the client."""
    if name in item:
        return item[name]
    lowered = name.lower()
    for key, value in item.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None
