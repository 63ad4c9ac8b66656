"""Every action gets every odd value, and none is answered with a 5xx.

Each action starts from a body that is valid up to the last check (its sources do not
exist, its task ids are unknown, its pipeline and preset are the test's own), and one
parameter at a time is replaced with an odd value written as raw JSON text: nesting
100 and 100,000 levels deep, numbers beyond any range (``1e999``, 5000 digits), ``NaN``,
lone surrogates as ``\\ud800`` escapes, long strings, wrong types. Dotted keys are sent in
queries and form bodies. Every answer must be HTTP 200 with a documented ``ErrNum``, or a
documented gateway error below 500.

One server for the module; a test's requests go one after the other over a kept-alive
connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from tests.integration.conftest import Deployment, deploy

from openkvs.api.actions import ACTIONS
from openkvs.api.sigv4 import presign_url
from openkvs.errors import API_MESSAGES, GatewayError

REGION = "cn-beijing-6"
NOW = datetime.now(UTC)
#: Dates and times inside the windows the list and statistics actions accept.
TODAY = NOW.astimezone(timezone(timedelta(hours=8))).strftime("%Y%m%d")
HOUR_AGO, NOW_UNIX = int(NOW.timestamp()) - 3600, int(NOW.timestamp())
MISSING_SOURCE = "/media/fuzz/none.mp3"
UNKNOWN_TASK = "0" * 32 + "20240315"

#: A valid body per action, up to the last check (nothing is created by it).
BASES: dict[str, dict[str, object]] = {
    "Preset": {"Preset": "fuzz_preset", "PresetType": "avinfo", "Param": {}, "Description": ""},
    "UpdatePreset": {"Preset": "fuzz_none", "PresetType": "avinfo", "Param": {}},
    "DelPreset": {"Preset": "fuzz_none"},
    "GetPresetList": {"Presets": "fuzz_none", "WithDetail": 1, "PresetType": "avinfo"},
    "GetPresetDetail": {"Preset": "fuzz_none"},
    "CreateTask": {
        "Preset": "fuzz_none",
        "SrcInfo": [{"path": MISSING_SOURCE}],
        "DstBucket": "media",
        "DstObjectKey": "fuzz/out.mp4",
        "DstDir": "fuzz/",
        "DstAcl": "private",
        "Pipeline": "fuzzpipe",
        "IsTop": 0,
        "CbUrl": "",
        "CbMethod": "POST",
        "ExtParam": "{}",
    },
    "CreateWaveTask": {
        "Preset": "wave",
        "SrcInfo": [{"path": MISSING_SOURCE}],
        "DstBucket": "media",
        "DstObjectKey": "fuzz/wave.json",
        "points": 10,
        "ExtParam": {"ss": 0, "duration": 1},
        "IsTop": 0,
    },
    "DelTaskByTaskID": {"TaskID": UNKNOWN_TASK},
    "TopTaskByTaskID": {"TaskID": UNKNOWN_TASK},
    "GetTaskList": {
        "StartDate": TODAY,
        "EndDate": TODAY,
        "Marker": 0,
        "Limit": 10,
        "ErrorCode": 0,
        "TaskStatus": "fail",
    },
    "GetTaskByTaskID": {"TaskID": UNKNOWN_TASK},
    "GetTaskMetaInfo": {"TaskID": UNKNOWN_TASK, "StartDate": TODAY, "Limit": 10},
    "FetchMetaInfo": {"SrcPath": MISSING_SOURCE},
    "UpdatePipeline": {
        "PipelineName": "fuzzpipe",
        "State": "Paused",
        "RegularStart": "01:00:00",
        "RegularDuration": 60,
        "Quota": 2,
        "Description": "",
    },
    "QueryPipeline": {"PipelineName": "fuzzpipe"},
    "QueryTaskStats": {"StartDate": TODAY, "EndDate": TODAY},
    "GetInterfaceNumber": {"StartUnixTime": HOUR_AGO, "EndUnixTime": NOW_UNIX},
    "GetMediaTransDuration": {
        "StartUnixTime": HOUR_AGO,
        "EndUnixTime": NOW_UNIX,
        "Granularity": 5,
        "ResultType": 1,
    },
    "GetScreenshotNumber": {"StartUnixTime": HOUR_AGO, "EndUnixTime": NOW_UNIX},
    "FetchObjectMediaProcess": {
        "Preset": "fuzz_none",
        "SrcInfo": [{"path": MISSING_SOURCE}],
        "DstBucket": "media",
        "DstObjectKey": "fuzz/out2.mp4",
    },
    "ListFetchObjectMediaProcess": {"Marker": "", "Limit": 10},
    "GetFetchObjectMediaProcess": {"ProcessTaskId": UNKNOWN_TASK},
    "GetObjectURL": {"SrcPath": MISSING_SOURCE, "Expires": 60},
}
#: Parameters an action without a base (one added later) is tried with.
GENERIC = ["Preset", "SrcInfo", "TaskID", "SrcPath", "StartDate", "Limit", "Param", "ExtParam"]

DEEP_ARRAY = "[" * 100 + "]" * 100
DEEP_OBJECT = '{"a":' * 100 + "1" + "}" * 100
#: Refused while the body is parsed, whatever the action or parameter: ErrNum 1001.
BODY_REFUSED = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "1" + "0" * 5000,
    "-" + "9" * 4000,
    DEEP_ARRAY,
    DEEP_OBJECT,
    "[" * 100_000 + "]" * 100_000,
    '{"\\ud800": 1}',
]
#: Values each parameter of each action is given (raw JSON text).
ODD_VALUES = [
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "-0.0",
    "1e308",
    "-1e308",
    "9" * 30,
    "123456789012345678901234567890.5",
    '""',
    '" "',
    '"\\u0000../.."',
    '"\\ud800"',
    '"a\\udfffb"',
    '"x/\\ud83d/y"',
    '"/media/\\udc80.mp3"',
    json.dumps("x" * 100_000),
    json.dumps("中文" * 2000),
    json.dumps("/media/" + "a" * 300),
    json.dumps("/media/" + "长" * 400),
    json.dumps("a/" * 600 + "b"),
    '"1e999"',
    '"NaN"',
    '"-1"',
    '"99999999999999999999999999999999"',
    '"2024-13-45"',
    "[]",
    "[null]",
    "{}",
    '{"path": 5}',
    '[{"path": "/media/\\ud800"}]',
    '[{"path": 1e300}]',
    '{"ss": "\\ud800", "duration": 1e300}',
    '"{\\"ss\\": NaN}"',
    json.dumps('{"a": ' + "[" * 40 + "1" + "]" * 40 + "}"),
    '"{\\"\\\\ud800\\": 1}"',
    "[" + ",".join(["{}"] * 10_000) + "]",
    '{"a":' * 20 + "1" + "}" * 20,
]
#: Dotted and odd keys for queries and form bodies.
ODD_FIELDS: list[list[tuple[str, str]]] = [
    [("SrcInfo.0.path", MISSING_SOURCE)],
    [("SrcInfo.99999999999999999999.path", "x")],
    [("SrcInfo.1000.path", "x")],
    [("a..b", "1"), (".a", "1"), ("a.", "1"), (".", "")],
    [("Param." + ".".join(["x"] * 100), "1")],
    [("SrcInfo.0", "1"), ("SrcInfo.0.path", "2")],
    [("Param.a", "1"), ("Param.0", "2")],
    [("Param", "1"), ("Param.a", "2")],
    [("SrcPath", "\x00")],
    [("TaskID", "x" * 5000)],
    [("Limit", "9" * 5000)],
    [("StartUnixTime", "1e999"), ("EndUnixTime", "-" + "9" * 40)],
    [(f"k{i}", "v") for i in range(2000)],
    [("ExtParam", '{"a":' * 100 + "1" + "}" * 100)],
    [("Param", "NaN")],
]
#: Raw query texts (percent-encoded invalid UTF-8, a CESU-8 surrogate).
ODD_QUERIES = ["SrcPath=%ED%A0%80", "DstObjectKey=%FF%FE", "SrcInfo.0.path=%2Fmedia%2F%ED%B2%80"]

GATEWAY_CODES = {cls.code for cls in GatewayError.__subclasses__()} | {"InternalError"}


@pytest.fixture(scope="module")
def fuzz_kvs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """Per test: a connection kept idle between tests could be closed by the server's
    keep-alive timeout just as it is reused."""
    with httpx.Client(trust_env=False, timeout=60) as client:
        yield client


def _body(base: dict[str, object], name: str, raw: str) -> bytes:
    rest = json.dumps({k: v for k, v in base.items() if k != name})
    return (rest[:-1] + (", " if rest != "{}" else "") + f'"{name}": {raw}}}').encode()


def _post(
    http: httpx.Client, kvs: Deployment, action: str, body: bytes, **kw: str
) -> httpx.Response:
    query = kw.get("query", "")
    url = presign_url(
        "POST",
        f"{kvs.server.url}/?Action={action}" + (f"&{query}" if query else ""),
        kvs.access_key,
        kvs.secret_key,
        REGION,
        now=datetime.now(UTC),
        body=body,
    )
    content_type = kw.get("content_type", "application/json")
    return http.post(url, content=body, headers={"Content-Type": content_type})


def _get(http: httpx.Client, kvs: Deployment, action: str, query: str) -> httpx.Response:
    url = kvs.presigned("GET", f"Action={action}&{query}")
    return http.get(url)


def _documented(reply: httpx.Response, where: str) -> dict[str, object]:
    assert reply.status_code < 500, f"{where}: {reply.status_code} {reply.text[:300]}"
    answer = reply.json()
    if reply.status_code == 200:
        assert answer.get("ErrNum") in API_MESSAGES, f"{where}: {answer}"
    else:
        assert answer["Error"]["Code"] in GATEWAY_CODES, f"{where}: {answer}"
    return dict(answer)


def _params(action: str) -> list[str]:
    base = BASES.get(action)
    return list(base) if base else GENERIC


def _encoded(fields: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in fields)


def test_every_action_has_a_base_or_is_new() -> None:
    """A renamed action would silently lose its base: every base names a known action."""
    assert set(BASES) <= set(ACTIONS)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_bodies_beyond_the_parser_limits_are_1001(
    fuzz_kvs: Deployment, http: httpx.Client, action: str
) -> None:
    name = _params(action)[0]
    for raw in BODY_REFUSED:
        body = _body(BASES.get(action, {}), name, raw)
        answer = _documented(_post(http, fuzz_kvs, action, body), f"{action} {name}={raw[:40]}")
        assert answer["ErrNum"] == 1001, f"{action} {name}={raw[:40]}: {answer}"


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_parameter_takes_every_odd_value(
    fuzz_kvs: Deployment, http: httpx.Client, action: str
) -> None:
    base = BASES.get(action, {})
    for name in _params(action):
        for raw in ODD_VALUES:
            where = f"{action} {name}={raw[:60]}"
            _documented(_post(http, fuzz_kvs, action, _body(base, name, raw)), where)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_odd_keys_in_queries_and_forms(
    fuzz_kvs: Deployment, http: httpx.Client, action: str
) -> None:
    for fields in ODD_FIELDS:
        query = _encoded(fields)
        where = f"{action} {query[:80]}"
        _documented(_get(http, fuzz_kvs, action, query), f"GET {where}")
        form = query.encode()
        reply = _post(
            http, fuzz_kvs, action, form, content_type="application/x-www-form-urlencoded"
        )
        _documented(reply, f"form {where}")
    for query in ODD_QUERIES:
        _documented(_get(http, fuzz_kvs, action, query), f"GET {action} {query}")


def test_refusals_name_the_right_code(fuzz_kvs: Deployment, http: httpx.Client) -> None:
    """Surrogates: 1001 in a value, 1014 in an object key or a source path's key; an
    over-long key segment 1014; a source path over 1024 bytes 1213; a huge number in a
    ranged field 1001."""
    wave = BASES["CreateWaveTask"]
    cases = [
        ("CreateWaveTask", wave, "DstObjectKey", '"out/\\ud800.json"', 1014),
        ("CreateWaveTask", wave, "SrcInfo", '[{"path": "/media/\\ud800.mp3"}]', 1014),
        ("CreateWaveTask", wave, "DstObjectKey", json.dumps("a" * 251 + "/x.json"), 1014),
        ("CreateWaveTask", wave, "DstObjectKey", json.dumps("x/" + "长" * 84), 1014),
        ("CreateWaveTask", wave, "SrcInfo", json.dumps([{"path": "/media/" + "长/" * 400}]), 1213),
        ("CreateWaveTask", wave, "points", "9" * 60, 1001),
        ("CreateWaveTask", wave, "ExtParam", '{"ss": 1e300}', 1018),
        ("CreateWaveTask", wave, "ExtParam", '"{\\"ss\\": \\"\\\\ud800\\"}"', 1018),
        ("FetchMetaInfo", {}, "SrcPath", '"/media/\\ud800"', 1014),
        ("FetchMetaInfo", {}, "SrcPath", json.dumps("/media/" + "长" * 400), 1213),
        ("Preset", BASES["Preset"], "Description", '"\\ud800"', 1001),
        ("Preset", BASES["Preset"], "Param", '{"\\ud800": 1}', 1001),
        ("Preset", BASES["Preset"], "Param", '{"a": "\\ud800"}', 1001),
        ("UpdatePipeline", BASES["UpdatePipeline"], "Description", '"\\udfff"', 1001),
        ("GetTaskList", BASES["GetTaskList"], "Limit", "9" * 60, 1001),
        ("GetInterfaceNumber", {}, "StartUnixTime", "1" + "0" * 300, 1001),
    ]
    for action, base, name, raw, code in cases:
        where = f"{action} {name}={raw[:60]}"
        answer = _documented(_post(http, fuzz_kvs, action, _body(base, name, raw)), where)
        assert answer["ErrNum"] == code, f"{where}: {answer}"


_QUERY_CLAIM = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20240101%2Fcn-beijing-6%2Fkvs"
    "%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Signature="
    + "0"
    * 64
)
ODD_SIGNED_QUERIES = [
    _QUERY_CLAIM + "&X-Amz-Expires=" + "9" * 5000,
    _QUERY_CLAIM + "&X-Amz-Expires=%C2%B2",  # a superscript two: a digit to str.isdigit
    _QUERY_CLAIM + "&X-Amz-Expires=-1",
    _QUERY_CLAIM.replace("20240101T000000Z", "%EF%BC%92%EF%BC%90240101T000000Z"),
    _QUERY_CLAIM.replace("AK%2F", "%FF%FE%2F"),
    _QUERY_CLAIM.replace("AK%2F", "%2F%2F%2F%2F%2F%2F"),
    _QUERY_CLAIM + "&X-Amz-Algorithm=AWS4-HMAC-SHA256",
    _QUERY_CLAIM.replace("0" * 64, "z" * 64),
    "X-Amz-Signature=" + "0" * 10_000,
]
ODD_AUTHORIZATION: list[dict[str, bytes]] = [
    {"Authorization": b"AWS4-HMAC-SHA256"},
    {"Authorization": b"AWS4-HMAC-SHA256 Credential="},
    {"Authorization": b"AWS4-HMAC-SHA256 " + b"," * 10_000},
    {"Authorization": b"AWS4-HMAC-SHA256 Credential=\xff/x, SignedHeaders=host, Signature=0"},
    {
        "Authorization": b"AWS4-HMAC-SHA256 Credential=AK/20240101/cn-beijing-6/kvs/aws4_request"
        b", SignedHeaders=host, Signature=" + b"0" * 64,
        "Date": b"\xff\xfe not a date",
    },
    {
        "Authorization": b"AWS4-HMAC-SHA256 Credential=AK/20240101/cn-beijing-6/kvs/aws4_request"
        b", SignedHeaders=host, Signature=" + b"0" * 64,
        "X-Amz-Date": "２０２４０１０１T000000Z".encode(),
    },
]


def test_odd_signatures_are_gateway_errors(fuzz_kvs: Deployment, http: httpx.Client) -> None:
    """Malformed claims, in the query or the Authorization header, with and without a
    body: each is a documented gateway error, never a 500."""
    body = b'{"Preset": "x"}' + b" " * 70_000  # over 64 KiB: the claim is read first
    for query in ODD_SIGNED_QUERIES:
        where = f"query {query[-60:]}"
        url = f"{fuzz_kvs.server.url}/?Action=GetPresetList&{query}"
        assert "Error" in _documented(http.get(url), where)
        assert "Error" in _documented(http.post(url, content=body), f"POST {where}")
    for headers in ODD_AUTHORIZATION:
        url = f"{fuzz_kvs.server.url}/?Action=GetPresetList"
        where = f"header {headers!r:.80}"
        assert "Error" in _documented(http.get(url, headers=headers), where)
        reply = http.post(url, content=body, headers=headers)
        assert "Error" in _documented(reply, f"POST {where}")


def test_fuzz_left_no_traceback(fuzz_kvs: Deployment, http: httpx.Client) -> None:
    """Runs last in this module: nothing above was answered 500 or logged a traceback."""
    log = Path(fuzz_kvs.server.log_path).read_text(errors="replace")
    assert "Traceback" not in log, log[log.find("Traceback") - 2000 :][:6000]
