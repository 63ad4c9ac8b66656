"""Client JSON within limits (service/json_input.py)."""

from __future__ import annotations

import pytest

from openkvs.errors import ApiError
from openkvs.service.json_input import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    has_lone_surrogate,
    parse,
    parse_object,
    tree_has_lone_surrogate,
)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"a": NaN}', "NaN"),
        ('{"a": Infinity}', "Infinity"),
        ('{"a": -Infinity}', "-Infinity"),
        ('{"a": 1e999}', "too large"),
        ('{"a": -1e400}', "too large"),
        ('{"a": ' + "1" * (MAX_INT_DIGITS + 1) + "}", "too long"),
        ('{"a": -' + "9" * 5000 + "}", "too long"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "deeper"),
        ('{"a":' * 100 + "1" + "}" * 100, "deeper"),
        ("[" * 100_000 + "]" * 100_000, "deeper"),
        ('{"\\ud800": 1}', "surrogate"),
        ('{"a": {"x\\udfffy": 1}}', "surrogate"),
        ("{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_refused_with_the_callers_code(text: str | bytes, why: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse(text, "the body", 1018)
    assert caught.value.code == 1018
    assert why in caught.value.message and "the body" in caught.value.message


def test_within_the_limits() -> None:
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse(deep, "x") is not None
    assert parse('{"a": ' + "9" * MAX_INT_DIGITS + "}", "x")["a"] == int("9" * MAX_INT_DIGITS)
    assert parse('{"a": 1.5e308, "b": -0.0, "c": "中"}', "x") == {"a": 1.5e308, "b": 0, "c": "中"}
    # A lone surrogate in a value is left to the parameter's reader (1001, 1014...).
    assert parse('{"a": "\\ud800"}', "x") == {"a": "\ud800"}


def test_parse_object_wants_an_object() -> None:
    for text in ("[1]", "1", '"a"', "null"):
        with pytest.raises(ApiError, match="must be a JSON object"):
            parse_object(text, "the body")
    assert parse_object("{}", "the body") == {}


def test_surrogates() -> None:
    assert not has_lone_surrogate("plain") and not has_lone_surrogate("中文 😀")
    assert has_lone_surrogate("a\ud800") and has_lone_surrogate("\udfff")
    assert tree_has_lone_surrogate({"a": [1, {"b": "\ud83d"}]})
    assert tree_has_lone_surrogate({"\ud800": 1})
    assert not tree_has_lone_surrogate({"a": [1, None, {"b": "😀"}]})
