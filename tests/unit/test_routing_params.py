"""Action selection (spec §1.2) and parameter normalisation (§1.3)."""

from __future__ import annotations

import pytest

from openkvs.api.routing import action_params, query_params, resolve_action
from openkvs.errors import ApiError, InvalidAction, InvalidVersion
from openkvs.service import params as p

KNOWN = {"CreateWaveTask": 1, "GetTaskByTaskID": 1}


def test_action_from_query_then_header_then_target() -> None:
    assert (
        resolve_action({"Action": "GetTaskByTaskID"}, {"x-action": "CreateWaveTask"}, KNOWN)
        == "GetTaskByTaskID"
    )
    assert resolve_action({}, {"x-action": "CreateWaveTask"}, KNOWN) == "CreateWaveTask"
    assert resolve_action({}, {"x-amz-target": "kvs.CreateWaveTask"}, KNOWN) == "CreateWaveTask"


@pytest.mark.parametrize(
    ("query", "headers", "exc"),
    [
        ({}, {}, InvalidAction),
        ({"Action": "createwavetask"}, {}, InvalidAction),
        ({}, {"x-amz-target": "other.CreateWaveTask"}, InvalidAction),
        ({"Action": "CreateWaveTask", "Version": "2016-09-19"}, {}, InvalidVersion),
        ({}, {"x-action": "CreateWaveTask", "x-version": "2020-01-01"}, InvalidVersion),
    ],
)
def test_gateway_errors(query: dict[str, str], headers: dict[str, str], exc: type) -> None:
    with pytest.raises(exc):
        resolve_action(query, headers, KNOWN)


def test_query_and_body_merge() -> None:
    query = query_params("Action=X&Version=2017-01-01&TaskID=abc&Empty=&X-Amz-Date=1")
    assert query["Empty"] == ""
    params = action_params("POST", query, b'{"TaskID": "def", "points": 5}')
    assert params == {"TaskID": "def", "Empty": "", "points": 5}
    with pytest.raises(ApiError) as info:
        action_params("POST", {}, b"[1]")
    assert info.value.code == 1001
    with pytest.raises(ApiError):
        action_params("POST", {}, b"{nope")


def test_int_coercion_and_empty_means_not_given() -> None:
    assert p.required_int({"n": "10"}, "n", 1, 20) == 10
    assert p.required_int({"n": 7.0}, "n", 1, 20) == 7
    for bad in (True, "x", 1.5, [1]):
        with pytest.raises(ApiError) as info:
            p.required_int({"n": bad}, "n", 1, 20)
        assert info.value.code == 1001
    with pytest.raises(ApiError) as info:
        p.required_int({"n": ""}, "n", 1, 20)
    assert info.value.code == 1000


def test_ext_param_string_or_object() -> None:
    assert p.ext_param({"ExtParam": '{"a": 1}'}) == ('{"a": 1}', {"a": 1})
    assert p.ext_param({"ExtParam": {"a": 1}}) == ('{"a":1}', {"a": 1})
    assert p.ext_param({}) == ("", {})
    for bad in ("{", "[1]", 5):
        with pytest.raises(ApiError) as info:
            p.ext_param({"ExtParam": bad})
        assert info.value.code == 1018


def test_callback_url_and_acl() -> None:
    assert p.callback_url({"CbUrl": "http://127.0.0.1:1/x"}) == "http://127.0.0.1:1/x"
    with pytest.raises(ApiError):
        p.callback_url({"CbUrl": "ftp://x"})
    assert p.acl({}) == "public-read"
    with pytest.raises(ApiError):
        p.acl({"DstAcl": "public"})


def test_integers_are_bounded() -> None:
    assert p.to_int("n", str(2**53)) == 2**53
    for huge in (2**53 + 1, -(2**53) - 1, "9" * 40, 1e300):
        with pytest.raises(ApiError) as info:
            p.to_int("n", huge)
        assert info.value.code == 1001
