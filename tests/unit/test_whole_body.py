"""A POST body kept whole for actions that take a JSON array (BatchCreateTask, §2.24)."""

from __future__ import annotations

import pytest

from openkvs.api.routing import WHOLE_BODY, action_params
from openkvs.errors import ApiError


def test_an_array_body_is_kept_whole_beside_the_query() -> None:
    body = b'[{"Preset": "a"}, 2]'
    params = action_params("POST", {"Action": "X", "Tag": "q"}, body, None, whole_body=True)
    assert params == {"Tag": "q", WHOLE_BODY: [{"Preset": "a"}, 2]}


@pytest.mark.parametrize("body", [b'{"Preset": "a"}', b'"text"', b"null", b"[]"])
def test_any_json_value_is_kept_whole_unmerged(body: bytes) -> None:
    params = action_params("POST", {}, body, None, whole_body=True)
    assert list(params) == [WHOLE_BODY]


def test_the_name_cannot_be_set_by_the_query_a_form_or_without_a_body() -> None:
    for query in ({WHOLE_BODY: "x"}, {f"{WHOLE_BODY}.0.Preset": "y"}):
        assert WHOLE_BODY not in action_params("POST", query, b"", None, whole_body=True)
    form = {WHOLE_BODY: "x"}
    assert WHOLE_BODY not in action_params("POST", {}, b"a=b", form, whole_body=True)
    assert WHOLE_BODY not in action_params("GET", {}, b"[1]", None, whole_body=True)
    assert WHOLE_BODY not in action_params("POST", {WHOLE_BODY: "x"}, b"{}", None)


def test_without_whole_body_an_array_is_refused_and_broken_json_always() -> None:
    with pytest.raises(ApiError) as refused:
        action_params("POST", {}, b"[1]", None)
    assert refused.value.code == 1001 and "JSON object" in refused.value.detail
    with pytest.raises(ApiError) as broken:
        action_params("POST", {}, b"[1", None, whole_body=True)
    assert broken.value.code == 1001
