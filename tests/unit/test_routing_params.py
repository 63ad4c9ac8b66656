"""Action selection (spec §1.2) and parameter normalisation (§1.3)."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from openkvs.api.routing import (
    MAX_FORM_FIELDS,
    action_params,
    form_params,
    query_params,
    resolve_action,
)
from openkvs.errors import ApiError, IncompleteSignature, InvalidAction, InvalidVersion
from openkvs.notify.policy import AddressPolicy
from openkvs.service import params as p

KNOWN = {"CreateWaveTask": 1, "GetTaskByTaskID": 1, "GetTaskList": 1}
#: What kscore signs (spec kscore-client.md §3).
SDK_SIGNED = frozenset(
    {"accept", "content-type", "host", "x-action", "x-amz-date", "x-amz-target", "x-version"}
)
HOST_ONLY = frozenset({"host", "x-amz-date"})
FORM = "application/x-www-form-urlencoded"


def resolve(
    query: dict[str, str],
    headers: dict[str, str],
    signed: frozenset[str] = SDK_SIGNED,
    form: dict[str, str] | None = None,
) -> str:
    return resolve_action(query, headers, KNOWN, signed_headers=signed, form=form)


def test_action_from_query_then_form_then_header_then_target() -> None:
    assert (
        resolve({"Action": "GetTaskByTaskID"}, {"x-action": "CreateWaveTask"}) == "GetTaskByTaskID"
    )
    assert resolve({}, {"x-action": "CreateWaveTask"}) == "CreateWaveTask"
    assert resolve({}, {"x-amz-target": "kvs.CreateWaveTask"}) == "CreateWaveTask"
    by_form = resolve({}, {"x-action": "GetTaskList"}, form={"Action": "GetTaskByTaskID"})
    assert by_form == "GetTaskByTaskID"
    assert resolve({"Action": "GetTaskList"}, {}, form={"Action": "GetTaskByTaskID"}) == (
        "GetTaskList"
    )


def test_an_action_or_version_header_must_be_signed() -> None:
    for name in ("x-action", "x-amz-target"):
        with pytest.raises(IncompleteSignature) as info:
            resolve({}, {name: "kvs.GetTaskList" if "target" in name else "GetTaskList"}, HOST_ONLY)
        assert "SignedHeaders" in info.value.message
    # A signed X-Amz-Target does not make an added, unsigned X-Action acceptable.
    with pytest.raises(IncompleteSignature):
        resolve(
            {},
            {"x-amz-target": "kvs.GetTaskList", "x-action": "CreateWaveTask"},
            HOST_ONLY | {"x-amz-target"},
        )
    with pytest.raises(IncompleteSignature):
        resolve({"Action": "GetTaskList"}, {"x-version": "2017-01-01"}, HOST_ONLY)
    # Chosen by the query or a form body (both covered by the signature): headers unread.
    assert resolve({"Action": "GetTaskList"}, {"x-action": "CreateWaveTask"}, HOST_ONLY) == (
        "GetTaskList"
    )
    form = {"Action": "GetTaskList", "Version": "2017-01-01"}
    assert resolve({}, {"x-action": "X", "x-version": "1"}, HOST_ONLY, form) == "GetTaskList"
    assert resolve({}, {"x-action": "GetTaskList", "x-version": "2017-01-01"}) == "GetTaskList"


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
        resolve(query, headers)
    with pytest.raises(exc):
        resolve({}, headers, form=query)


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


def test_form_body_fields() -> None:
    body = b"Action=CreateTask&SrcInfo.0.path=%2Fb%2Fk%20a.mp4&SrcInfo.0.index=0&Note=a+b&Note=c"
    form = form_params("POST", f"{FORM}; charset=utf-8", body)
    assert form == {
        "Action": "CreateTask",
        "SrcInfo.0.path": "/b/k a.mp4",
        "SrcInfo.0.index": "0",
        "Note": "a b",
    }
    assert form_params("POST", "Application/X-WWW-Form-Urlencoded", b"") == {}
    # Only a POST's form body is a form: JSON and GET bodies are not.
    assert form_params("POST", "application/json", b"a=1") is None
    assert form_params("POST", "", b"a=1") is None
    assert form_params("GET", FORM, b"a=1") is None


@pytest.mark.parametrize(
    "body",
    [b"a=\xff", b"a=%ff", b"a=%ED%A0%80", b"&".join([b"a=1"] * (MAX_FORM_FIELDS + 1))],
)
def test_bad_form_bodies_are_1001(body: bytes) -> None:
    with pytest.raises(ApiError) as info:
        form_params("POST", FORM, body)
    assert info.value.code == 1001


def test_form_and_query_params_are_rebuilt_and_transport_fields_dropped() -> None:
    query = query_params("Action=Preset&Version=2017-01-01&Param.f=mp4&X-Amz-Date=1&Region=r")
    form = form_params(
        "POST",
        FORM,
        b"Action=Preset&Version=2017-01-01&Service=kvs&Region=cn-beijing-6&SdkVersion=x"
        b"&Accesskey=AK&Language=zh-CN&Preset=p1&Param.VIDEO.vcodec=h264&Param.VIDEO.width=640"
        b"&SrcInfo.1.path=%2Fb%2F2&SrcInfo.0.path=%2Fb%2F1",
    )
    params = action_params("POST", query, b"ignored: the form was read", form)
    assert params == {
        "Preset": "p1",
        "Param": {"VIDEO": {"vcodec": "h264", "width": "640"}},  # the body wins
        "SrcInfo": [{"path": "/b/1"}, {"path": "/b/2"}],
    }
    get = action_params("GET", query_params("SrcInfo.0.path=%2Fb%2F1&TaskID=t&Accesskey=AK"), b"")
    assert get == {"SrcInfo": [{"path": "/b/1"}], "TaskID": "t"}
    # A JSON body keeps its own shape; the SDK's transport members are dropped there too.
    body = b'{"Action": "Preset", "Service": "kvs", "Param.f": "x", "Param": {"f": "mp4"}}'
    assert action_params("POST", {}, body) == {"Param.f": "x", "Param": {"f": "mp4"}}
    with pytest.raises(ApiError) as info:
        action_params("GET", query_params("Param=1&Param.f=mp4"), b"")
    assert info.value.code == 1001


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
    loopback = AddressPolicy((ip_network("127.0.0.0/8"),))
    assert p.callback_url({"CbUrl": "http://127.0.0.1:1/x"}, loopback) == "http://127.0.0.1:1/x"
    with pytest.raises(ApiError):
        p.callback_url({"CbUrl": "ftp://x"}, loopback)
    assert p.acl({}) == "public-read"
    with pytest.raises(ApiError):
        p.acl({"DstAcl": "public"})


def test_integers_are_bounded() -> None:
    assert p.to_int("n", str(2**53)) == 2**53
    for huge in (2**53 + 1, -(2**53) - 1, "9" * 40, 1e300):
        with pytest.raises(ApiError) as info:
            p.to_int("n", huge)
        assert info.value.code == 1001
