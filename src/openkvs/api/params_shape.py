"""Nested parameters rebuilt from flattened keys (form bodies and queries, spec §1.3).

Kingsoft's current SDK generation (``kingsoftcloud-sdk-python``) sends objects and arrays
as one field per leaf, the path joined by dots: ``SrcInfo.0.path=/b/in.mp4``,
``Param.VIDEO.vcodec=h264``. :func:`unflatten` turns such fields back into the JSON shape
every action reads:

* A key is split on ``.``. The first segment is always a member name; a later segment made
  only of ASCII digits is an array index, any other segment a member name.
* An array holds its items ordered by index; gaps are closed (``a.0``, ``a.7`` give two
  items). Indexes above :data:`MAX_INDEX` and keys of more than :data:`MAX_DEPTH` segments
  are refused (1001), so a crafted key cannot make a huge array or a deep tree.
* A key with an empty segment (``a..b``, ``.a``, ``a.``) is not a path: it stays one
  literal name (an unknown parameter, ignored like any other).
* A name used both for a value and for an object or array (``a=1`` with ``a.b=2``), or for
  both an object and an array (``a.0=1`` with ``a.b=2``), is refused (1001).
* A repeated key keeps its first value, as plain queries do.

Values stay strings: the action's readers coerce them to the documented types (§1.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openkvs.errors import invalid

#: The most segments one key may have (``Param.LOGOS.0.x`` has 4).
MAX_DEPTH = 12
#: The largest array index accepted (``SrcInfo`` has at most 20 items).
MAX_INDEX = 999


class _Array(dict[int, Any]):
    """An array while it is being filled: index → item, listed by index at the end."""


def unflatten(fields: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Objects and arrays rebuilt from dotted keys; keys without a dot are kept as they are."""
    root: dict[str, Any] = {}
    for key, value in fields:
        segments = key.split(".")
        if len(segments) == 1 or not all(segments):
            if isinstance(root.get(key), dict):
                raise invalid(_shown(key), "is given both as a value and as an object or array")
            root.setdefault(key, value)
            continue
        if len(segments) > MAX_DEPTH:
            raise invalid(_shown(key), f"has more than {MAX_DEPTH} dotted segments")
        _insert(root, key, segments, value)
    return _finish(root)


def _shown(key: str) -> str:
    """A key as error messages show it: crafted keys can be long."""
    return key if len(key) <= 80 else key[:80] + "..."


def _is_index(segment: str) -> bool:
    return segment.isascii() and segment.isdigit()


def _member(key: str, segments: list[str], n: int) -> str | int:
    segment = segments[n]
    if n == 0 or not _is_index(segment):
        return segment
    index = int(segment) if len(segment) <= len(str(MAX_INDEX)) else MAX_INDEX + 1
    if index > MAX_INDEX:
        raise invalid(_shown(key), f"has an array index above {MAX_INDEX}")
    return index


def _insert(root: dict[str, Any], key: str, segments: list[str], value: str) -> None:
    container: dict[Any, Any] = root
    last = len(segments) - 1
    for n in range(len(segments)):
        member = _member(key, segments, n)
        here = ".".join(segments[: n + 1])
        existing = container.get(member)
        if n == last:
            if isinstance(existing, dict):
                raise invalid(_shown(here), "is given both as a value and as an object or array")
            container.setdefault(member, value)
            return
        wanted = _Array if _is_index(segments[n + 1]) else dict
        if existing is None:
            existing = container[member] = wanted()
        elif not isinstance(existing, dict):
            raise invalid(_shown(here), "is given both as a value and as an object or array")
        elif type(existing) is not wanted:
            raise invalid(_shown(here), "is given both as an array and as an object")
        container = existing


def _finish(node: Any) -> Any:
    if isinstance(node, _Array):
        return [_finish(node[index]) for index in sorted(node)]
    if isinstance(node, dict):
        return {name: _finish(item) for name, item in node.items()}
    return node
