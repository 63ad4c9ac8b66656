"""JSON sent by clients, parsed within limits: request bodies, ``ExtParam``, ``Param`` texts.

Python's :func:`json.loads` accepts more than a client should be able to send, and some of
it fails far from the parser (a 500 when it is stored or answered). :func:`parse` refuses:

* nesting deeper than :data:`MAX_DEPTH` objects and arrays (a very deep document would also
  exhaust the parser's recursion);
* ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON) and numbers too big for a float
  (``1e999``);
* integer literals longer than :data:`MAX_INT_DIGITS` digits (Python refuses to convert more
  than 4300 digits anyway, and no parameter needs more than 20);
* member names holding a lone UTF-16 surrogate (``"\\ud800"``): such text cannot be stored
  or answered as UTF-8.

Each refusal is an :class:`ApiError` with the caller's code (1001 for a body).

Surrogates in string *values* are left to the reader of each parameter, which knows the
right code: :func:`has_lone_surrogate` is used by ``service/params.py`` (1001) and
``storage/keys.py`` (1014 for object keys and paths).
"""

from __future__ import annotations

import json
import math
from typing import Any

from openkvs.errors import ApiError

#: The deepest nesting of objects and arrays accepted (``{"a": [1]}`` has depth 2). The
#: deepest documented parameter (``Param.LOGOS[i]`` inside a body) needs 4.
MAX_DEPTH = 32
#: The longest integer literal accepted, in digits (a 64-bit integer has at most 20).
MAX_INT_DIGITS = 64


class _Refused(ValueError):
    """A literal :func:`json.loads` would accept but :func:`parse` does not."""


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:40]} is too large")
    return value


def _int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {digits} digits is too long")
    return int(text)


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a UTF-16 surrogate on its own (it cannot be UTF-8 encoded)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def tree_has_lone_surrogate(value: Any) -> bool:
    """:func:`has_lone_surrogate` for every string (names included) of a parsed document."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _check_tree(value: Any) -> str:
    """Why the parsed ``value`` is refused ("" when it is not): too deep, or a member name
    with a lone surrogate. Iterative, so it cannot exhaust the stack itself."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            if depth > MAX_DEPTH:
                return f"nests objects and arrays deeper than {MAX_DEPTH} levels"
            if isinstance(item, dict):
                for name, member in item.items():
                    if has_lone_surrogate(name):
                        return "has a member name with a lone UTF-16 surrogate"
                    stack.append((member, depth))
            else:
                stack.extend((member, depth) for member in item)
    return ""


def parse(text: str | bytes, what: str, code: int = 1001) -> Any:
    """The JSON value of ``text``, or ``ApiError(code)`` naming ``what`` and the reason."""
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise ApiError(
            code, f"{what} nests objects and arrays deeper than {MAX_DEPTH} levels"
        ) from None
    except _Refused as exc:
        raise ApiError(code, f"{what} is refused: {exc}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ApiError(code, f"{what} is not valid JSON: {exc}") from None
    why = _check_tree(value)
    if why:
        raise ApiError(code, f"{what} {why}")
    return value


def parse_object(text: str | bytes, what: str, code: int = 1001) -> dict[str, Any]:
    """:func:`parse`, and ``ApiError(code)`` unless the value is a JSON object."""
    value = parse(text, what, code)
    if not isinstance(value, dict):
        raise ApiError(code, f"{what} must be a JSON object")
    return value
