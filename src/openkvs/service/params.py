"""Reading action parameters: presence, types and the normalisations of spec §1.3.

Query values arrive as strings and JSON bodies mix numbers and strings, so every reader
accepts both where the documented type allows; an empty string means "not given".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from openkvs.errors import ApiError, invalid, missing
from openkvs.notify.policy import AddressPolicy, CallbackRefused, Resolve, check_callback_url
from openkvs.notify.resolver import resolve_bounded
from openkvs.service import json_input

Params = Mapping[str, Any]


def given(params: Params, name: str) -> bool:
    value = params.get(name)
    return value is not None and value != ""


#: Parameters that name an object or a folder: text that is not Unicode there is a bad name
#: (1014 object key, 1020 directory) rather than a bad value (1001).
OBJECT_NAME_CODES = {"DstObjectKey": 1014, "SrcPath": 1014, "DstDir": 1020}


def required_str(params: Params, name: str) -> str:
    if not given(params, name):
        raise missing(name)
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(name, "must be a string")
    if isinstance(value, str) and json_input.has_lone_surrogate(value):
        code = OBJECT_NAME_CODES.get(name, 1001)
        raise ApiError(code, f"{name} contains a lone UTF-16 surrogate")
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
        # The value is not echoed: beyond 1e308 even {number:.3g} would overflow.
        raise invalid(name, "is out of range (beyond ±2**53)")
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


def callback_url(
    params: Params,
    policy: AddressPolicy,
    name: str = "CbUrl",
    *,
    resolve: Resolve = resolve_bounded,
) -> str:
    """A callback URL the address policy accepts (see ``notify/policy.py``), or ""; 1001
    for an unusable form or a refused destination. A host name is looked up now, within a
    bound; one that does not resolve yet is accepted and checked again at delivery."""
    value = optional_str(params, name)
    if value:
        try:
            check_callback_url(value, policy, resolve)
        except CallbackRefused as exc:
            raise invalid(name, str(exc)) from exc
    return value


def ext_param(params: Params, name: str = "ExtParam") -> tuple[str, dict[str, Any]]:
    """(raw string as submitted, parsed object). A JSON string or, tolerated, an object."""
    if not given(params, name):
        return "", {}
    value = params[name]
    if isinstance(value, dict):
        # Already parsed with the body: the body's limits held (depth, numbers).
        if json_input.tree_has_lone_surrogate(value):
            raise ApiError(1018, f"{name} contains a lone UTF-16 surrogate")
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")), value
    if not isinstance(value, str):
        raise ApiError(1018, f"{name} must be a JSON object string")
    parsed = json_input.parse_object(value, name, 1018)
    if json_input.has_lone_surrogate(value) or json_input.tree_has_lone_surrogate(parsed):
        raise ApiError(1018, f"{name} contains a lone UTF-16 surrogate")
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
