"""Objects and arrays rebuilt from dotted keys (api/params_shape.py)."""

from __future__ import annotations

from typing import Any

import pytest

from openkvs.api.params_shape import MAX_DEPTH, MAX_INDEX, unflatten
from openkvs.errors import ApiError


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    """What kingsoftcloud-sdk-python's ``_format_params`` sends for ``value``."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _flatten(f"{prefix}.{k}", v)]
    if isinstance(value, list):
        return [pair for n, v in enumerate(value) for pair in _flatten(f"{prefix}.{n}", v)]
    return [(prefix, str(value))]


def test_plain_keys_are_kept_as_they_are() -> None:
    assert unflatten([("TaskID", "t"), ("Empty", ""), ("0", "x")]) == {
        "TaskID": "t",
        "Empty": "",
        "0": "x",
    }


def test_the_sdk_flattening_round_trips() -> None:
    params = {
        "Preset": "hd",
        "Param": {
            "f": "mp4",
            "VIDEO": {"vcodec": "h264", "width": "1280", "LOGOS": [{"x": "1"}, {"x": "2"}]},
            "AUDIO": {"acodec": "aac"},
        },
        "SrcInfo": [{"path": f"/b/{n}.mp4", "index": str(n)} for n in range(12)],
        "Matrix": [["a", "b"], ["c"]],
    }
    pairs = [pair for k, v in params.items() for pair in _flatten(k, v)]
    assert ("SrcInfo.10.path", "/b/10.mp4") in pairs
    assert unflatten(pairs) == params


def test_array_items_are_ordered_by_index_and_gaps_closed() -> None:
    pairs = [("a.10", "ten"), ("a.2", "two"), ("a.07", "seven"), ("b.1.x", "1"), ("b.0.x", "0")]
    assert unflatten(pairs) == {"a": ["two", "seven", "ten"], "b": [{"x": "0"}, {"x": "1"}]}


def test_only_ascii_digits_make_an_index() -> None:
    assert unflatten([("a.²", "x"), ("b.1a", "y")]) == {"a": {"²": "x"}, "b": {"1a": "y"}}


def test_keys_with_empty_segments_are_literal_names() -> None:
    pairs = [("a..b", "1"), (".a", "2"), ("a.", "3"), ("a.b", "4")]
    assert unflatten(pairs) == {"a..b": "1", ".a": "2", "a.": "3", "a": {"b": "4"}}


def test_a_repeated_key_keeps_its_first_value() -> None:
    assert unflatten([("a.b", "1"), ("a.b", "2"), ("c", "3"), ("c", "4")]) == {
        "a": {"b": "1"},
        "c": "3",
    }


@pytest.mark.parametrize(
    "pairs",
    [
        [("a", "1"), ("a.b", "2")],
        [("a.b", "2"), ("a", "1")],
        [("a.0", "1"), ("a", "2")],
        [("a.b", "1"), ("a.b.c", "2")],
        [("a.b.c", "2"), ("a.b", "1")],
        [("a.0", "1"), ("a.b", "2")],
        [("a.b", "1"), ("a.0", "2")],
        [("a.0.x", "1"), ("a.0", "2")],
    ],
)
def test_a_name_cannot_be_a_value_and_a_container_or_both_kinds(
    pairs: list[tuple[str, str]],
) -> None:
    with pytest.raises(ApiError) as info:
        unflatten(pairs)
    assert info.value.code == 1001
    assert "is given both as" in info.value.message


def test_index_and_depth_are_bounded() -> None:
    assert unflatten([(f"a.{MAX_INDEX}", "x")]) == {"a": ["x"]}
    deepest = ".".join(["a"] * MAX_DEPTH)
    assert unflatten([(deepest, "x")])
    for key in (f"a.{MAX_INDEX + 1}", "a." + "9" * 5000, ".".join(["a"] * (MAX_DEPTH + 1))):
        with pytest.raises(ApiError) as info:
            unflatten([(key, "x")])
        assert info.value.code == 1001
        assert len(info.value.message) < 200  # the crafted key is not echoed whole
