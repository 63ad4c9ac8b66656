"""Frozen spec dataclasses to JSON-able dicts and back (the spec a task stores).

Fields may be ``int``, ``float``, ``str``, ``bool``, ``None``, nested spec dataclasses,
``tuple[X, ...]`` of those, ``dict[str, str]`` and unions with ``None``. The stored form is
``dataclasses.asdict`` with tuples as lists; loading rebuilds the nested dataclasses and
tuples from the field types.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def dump(spec: Any) -> dict[str, Any]:
    """``spec`` (a dataclass instance) as plain JSON-able data."""
    if not dataclasses.is_dataclass(spec) or isinstance(spec, type):
        raise TypeError(f"not a dataclass instance: {spec!r}")
    return typing.cast(dict[str, Any], _plain(spec))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def load(cls: type[T], data: Any) -> T:
    """The ``cls`` instance that :func:`dump` turned into ``data``."""
    return typing.cast(T, _build(cls, data))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _build(options[0], data) if len(options) == 1 else data
    if origin is typing.Literal:
        return data
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        names = {f.name for f in dataclasses.fields(tp) if f.init}
        return tp(**{k: _build(hints[k], v) for k, v in data.items() if k in names})
    if origin is tuple:
        args = typing.get_args(tp)
        item = args[0] if args else Any
        return tuple(_build(item, v) for v in data)
    if origin is dict:
        return dict(data)
    if tp is float and isinstance(data, int):
        return float(data)
    return data
