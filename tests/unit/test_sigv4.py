"""SigV4 verification against requests signed by the official ``kscore`` SDK.

Most requests are produced by a real ``kscore`` client whose HTTP send is replaced by a
capture (no socket is opened); the SDK's signing clock is frozen so that timestamps are
exact. ``Wire`` is what our server would receive: lower-case header names plus the ``Host``
and ``Accept-Encoding`` headers that ``http.client`` adds after signing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.datastructures import Headers
from tests.support import kvs_client as support

from openkvs.api import sigv4
from openkvs.api.sigv4 import SignedIdentity, presign_url, signing_key, verify
from openkvs.errors import (
    IncompleteSignature,
    InvalidClientTokenId,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureDoesNotMatch,
)

AK = "AKLOCALTEST0000000001"
SK = "sk-local-test-secret/+0000000000000000001"
REGION = "cn-beijing-6"
ENDPOINT = "http://127.0.0.1:44983"
T0 = datetime(2026, 11, 24, 16, 4, 51, tzinfo=UTC)  # the capture of kscore-client.md §3
KEYS = {AK: SK}
NO_KEYS: dict[str, str] = {}
SDK_SIGNED_HEADERS = "accept;content-type;host;x-action;x-amz-date;x-amz-target;x-version"
TASK_ID = "0123456789abcdef0123456789abcdef20261124"


@cache
def _kscore() -> Any:
    """The kscore package, imported through the support module (which tames its warnings)."""
    return support._import_kscore()


# --- the wire -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Wire:
    """A request as the server receives it."""

    method: str
    path: str
    raw_query: str
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def from_prepared(cls, request: Any) -> Wire:
        parts = urlsplit(request.url)
        headers = {
            name.lower(): value.decode("utf-8") if isinstance(value, bytes) else value
            for name, value in request.headers.items()
        }
        # Added by http.client after signing: Host drops a default port (the §1 quirk).
        default_port = {"http": 80, "https": 443}[parts.scheme]
        host = parts.hostname if parts.port in (None, default_port) else parts.netloc
        headers.setdefault("host", str(host))
        headers.setdefault("accept-encoding", "identity")
        body = request.body or b""
        return cls(request.method, parts.path, parts.query, headers, body)

    def replace(self, **changes: Any) -> Wire:
        return dataclasses.replace(self, **changes)

    def with_headers(self, **changes: str | None) -> Wire:
        headers = dict(self.headers)
        for name, value in changes.items():
            name = name.replace("_", "-")
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = value
        return self.replace(headers=headers)


def check(
    wire: Wire,
    *,
    now: datetime = T0,
    secret_for: Callable[[str], str | None] = KEYS.get,
    **options: Any,
) -> SignedIdentity:
    return verify(
        wire.method,
        wire.raw_query,
        wire.headers,
        wire.body,
        secret_for,
        now=now,
        path=wire.path,
        **options,
    )


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("request captured")
        self.request = request


def _capture_send(request: Any, **_: Any) -> Any:
    raise _Captured(request)


@cache
def sdk_client(endpoint: str = ENDPOINT, region: str = REGION) -> Any:
    """A real kscore client whose transport captures the signed request instead of sending."""
    client = support.make_kvs_client(endpoint, AK, SK, region=region, extra_ops=False)
    client._endpoint.http_session.send = _capture_send
    return client


def sdk_call(
    operation: str, /, *, endpoint: str = ENDPOINT, region: str = REGION, **params: Any
) -> Wire:
    """What the SDK puts on the wire for ``client.<operation>(**params)``."""
    with pytest.raises(_Captured) as captured:
        getattr(sdk_client(endpoint, region), operation)(**params)
    return Wire.from_prepared(captured.value.request)


def sdk_sign(
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    *,
    token: str | None = None,
    service: str = "kvs",
    region: str = REGION,
) -> Wire:
    """Sign a hand-made request with ``kscore.auth.SigV4Auth`` (exactly the SDK signer)."""
    kscore = _kscore()
    request = kscore.ksrequest.KSRequest(
        method=method, url=url, data=body, headers=dict(headers or {})
    )
    credentials = kscore.credentials.Credentials(AK, SK, token)
    kscore.auth.SigV4Auth(credentials, service, region).add_auth(request)
    return Wire.from_prepared(request.prepare())


def sdk_presign(url: str, *, expires: int = 3600, token: str | None = None) -> str:
    """A query-form URL from ``kscore.auth.SigV4QueryAuth`` (botocore's presigner)."""
    kscore = _kscore()
    request = kscore.ksrequest.KSRequest(method="GET", url=url, headers={})
    credentials = kscore.credentials.Credentials(AK, SK, token)
    kscore.auth.SigV4QueryAuth(credentials, "kvs", REGION, expires=expires).add_auth(request)
    return str(request.url)


def url_wire(url: str, method: str = "GET", body: bytes = b"", **headers: str) -> Wire:
    parts = urlsplit(url)
    all_headers = {"host": parts.netloc, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return Wire(method, parts.path, parts.query, all_headers, body)


def _frozen_clock(moment: datetime) -> SimpleNamespace:
    naive = moment.astimezone(UTC).replace(tzinfo=None)

    class FrozenDatetime(datetime):
        @classmethod
        def utcnow(cls) -> FrozenDatetime:
            return cls.fromisoformat(naive.isoformat())

    return SimpleNamespace(datetime=FrozenDatetime)


@pytest.fixture(autouse=True)
def sdk_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[datetime], None]]:
    """Freeze kscore's signing clock (``datetime.datetime.utcnow`` in kscore.auth) at T0."""

    def set_clock(moment: datetime) -> None:
        monkeypatch.setattr(_kscore().auth, "datetime", _frozen_clock(moment))

    set_clock(T0)
    yield set_clock


def get_wire() -> Wire:
    return sdk_call("get_task_by_task_id", TaskID=TASK_ID)


def post_wire() -> Wire:
    return sdk_call(
        "create_task",
        Preset="testpreset",
        SrcInfo=[{"Path": "/src-bucket/in/a.mp4", "Type": "video", "Index": 0}],
        DstBucket="dst-bucket",
        DstObjectKey="out/a_720p.mp4",
        CbUrl="http://10.0.0.1:19090/cb?x=1&y=2",
        ExtParam={"Priority": 5, "Note": "中文 & spaces 😀"},
    )


# --- requests signed by the SDK verify --------------------------------------------------


def test_sdk_get_with_json_content_type_and_empty_body() -> None:
    wire = get_wire()
    assert wire.method == "GET"
    assert wire.body == b""
    assert wire.headers["content-type"] == "application/json"
    assert f"SignedHeaders={SDK_SIGNED_HEADERS}," in wire.headers["authorization"]
    assert "content-length" not in wire.headers

    identity = check(wire)

    assert identity == SignedIdentity(
        access_key_id=AK,
        region=REGION,
        date=T0,
        signed_headers=frozenset(SDK_SIGNED_HEADERS.split(";")),
    )
    assert identity.date.tzinfo is not None


def test_sdk_post_json_body_with_escaped_non_ascii() -> None:
    wire = post_wire()
    assert wire.method == "POST"
    assert b"\\u4e2d\\u6587 & spaces \\ud83d\\ude00" in wire.body  # ensure_ascii escapes
    assert json.loads(wire.body)["ExtParam"]["Note"] == "中文 & spaces 😀"

    assert check(wire).access_key_id == AK


def test_sdk_query_with_cjk_space_reserved_repeated_and_empty_values() -> None:
    wire = sdk_call(
        "query_pipeline",  # no input shape: the SDK sends anything as given
        PipelineName="中文 a+b/c?d=e&f~*'()!",
        L=["2", "1", "2"],
        Empty="",
        Zero=0,
    )
    assert "%20" in wire.raw_query and "%2B" in wire.raw_query and "+" not in wire.raw_query
    assert "L=2&L=1&L=2" in wire.raw_query
    assert "Empty=&" in wire.raw_query

    assert check(wire).access_key_id == AK


def test_sdk_wrapper_style_empty_string_parameters() -> None:
    wire = sdk_call(
        "get_task_list",
        StartDate=20261101,
        EndDate=20261124,
        Marker=0,
        Limit=100,
        StartTime=0,
        EndTime=0,
        ErrorCode="",
        TaskStatus="",
    )
    assert wire.raw_query.endswith("ErrorCode=&TaskStatus=")
    assert check(wire).access_key_id == AK


def test_captured_worked_example_of_kscore_client_md_section_3() -> None:
    wire = get_wire()
    expected_canonical_request = "\n".join(
        [
            "GET",
            "/",
            f"TaskID={TASK_ID}",
            "accept:application/json",
            "content-type:application/json",
            "host:127.0.0.1:44983",
            "x-action:GetTaskByTaskID",
            "x-amz-date:20261124T160451Z",
            "x-amz-target:kvs.GetTaskByTaskID",
            "x-version:2017-01-01",
            "",
            SDK_SIGNED_HEADERS,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ]
    )
    ours = sigv4.canonical_request(
        wire.method,
        wire.path,
        sigv4.canonical_query(sigv4._parse_query(wire.raw_query)),
        sigv4._canonical_headers(wire.headers, SDK_SIGNED_HEADERS),
        SDK_SIGNED_HEADERS,
        sigv4.EMPTY_SHA256,
    )
    assert ours == expected_canonical_request
    assert wire.headers["authorization"] == (
        f"AWS4-HMAC-SHA256 Credential={AK}/20261124/cn-beijing-6/kvs/aws4_request, "
        f"SignedHeaders={SDK_SIGNED_HEADERS}, "
        "Signature=d2428029bb36ee2b1e0d824406c2bd4541c9fe5672e47c2993bcfc06cabe690b"
    )
    assert check(wire).date == T0


def test_session_token_header_is_signed_and_accepted() -> None:
    wire = sdk_sign("GET", f"{ENDPOINT}/?Preset=p", {"X-Action": "DelPreset"}, token="tok/+=")
    assert wire.headers["x-amz-security-token"] == "tok/+="
    assert "x-amz-security-token" in wire.headers["authorization"]
    assert check(wire).access_key_id == AK
    with pytest.raises(SignatureDoesNotMatch):
        check(wire.with_headers(x_amz_security_token="other"))


def test_region_comes_from_the_scope_never_from_host() -> None:
    wire = sdk_call(
        "get_task_by_task_id",
        endpoint="http://kvs.api.ksyun.com",
        region="cn-shanghai-2",
        TaskID=TASK_ID,
    )
    assert wire.headers["host"] == "kvs.api.ksyun.com"
    assert check(wire).region == "cn-shanghai-2"


def test_endpoint_path_prefix_is_part_of_the_canonical_uri() -> None:
    wire = sdk_call("get_task_by_task_id", endpoint=f"{ENDPOINT}/kvs/", TaskID=TASK_ID)
    assert wire.path == "/kvs/"
    assert check(wire).access_key_id == AK
    with pytest.raises(SignatureDoesNotMatch):
        check(wire.replace(path="/"))


def test_explicit_default_port_in_endpoint_cannot_verify() -> None:
    # kscore-client.md §1 quirk: the SDK signs host:127.0.0.1:80, http.client sends 127.0.0.1.
    wire = sdk_call("get_task_by_task_id", endpoint="http://127.0.0.1:80", TaskID=TASK_ID)
    assert wire.headers["host"] == "127.0.0.1"
    with pytest.raises(SignatureDoesNotMatch):
        check(wire)
    assert check(wire.with_headers(host="127.0.0.1:80")).access_key_id == AK


def test_date_header_instead_of_x_amz_date() -> None:
    wire = sdk_sign("GET", f"{ENDPOINT}/?a=1", {"Date": "placeholder", "X-Action": "GetPresetList"})
    assert "x-amz-date" not in wire.headers
    assert wire.headers["date"] == "Tue, 24 Nov 2026 16:04:51 -0000"  # email.utils.formatdate
    assert check(wire).date == T0


def test_java_style_client_signing_only_host_and_date() -> None:
    wire = sdk_sign("POST", f"{ENDPOINT}/?Action=CreateTask&Version=2017-01-01", body=b'{"a":1}')
    assert "SignedHeaders=host;x-amz-date," in wire.headers["authorization"]
    unsigned = {"x_ksc_service": "kvs", "x_ksc_region": REGION, "content_type": "text/plain"}
    assert check(wire.with_headers(**unsigned)).access_key_id == AK


def test_signed_headers_are_exposed_lower_case() -> None:
    wire = sdk_sign("GET", f"{ENDPOINT}/?Action=GetTaskList")
    assert check(wire).signed_headers == {"host", "x-amz-date"}
    signed = sdk_sign("GET", f"{ENDPOINT}/", {"X-Action": "GetTaskList"})
    assert check(signed).signed_headers == {"host", "x-action", "x-amz-date"}


def test_an_action_in_a_form_body_is_covered_by_the_payload_hash() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = b"Action=GetTaskList&Version=2017-01-01&Service=kvs&Marker=0"
    wire = sdk_sign("POST", f"{ENDPOINT}/", form, body)
    assert check(wire).access_key_id == AK
    with pytest.raises(SignatureDoesNotMatch):
        check(wire.replace(body=body.replace(b"GetTaskList", b"DelPreset")))


def test_java_latin1_payload_bug_needs_the_compatibility_switch() -> None:
    text = '{"Description":"中文 café"}'
    hashed_as_java_does = text.encode("latin-1", "replace")  # "?? café"
    wire = sdk_sign("POST", f"{ENDPOINT}/?Action=Preset", body=hashed_as_java_does)
    sent = wire.replace(body=text.encode("utf-8"))
    with pytest.raises(SignatureDoesNotMatch):
        check(sent)
    assert check(sent, latin1_payload_fallback=True).access_key_id == AK
    with pytest.raises(SignatureDoesNotMatch):
        check(
            sent.replace(body='{"Description":"中文 cafe"}'.encode()), latin1_payload_fallback=True
        )


def test_header_values_are_trimmed_and_space_runs_collapsed() -> None:
    wire = sdk_sign("GET", f"{ENDPOINT}/", {"X-Note": "a b c", "X-Action": "GetPresetList"})
    assert check(wire.with_headers(x_note="  a   b    c ")).access_key_id == AK
    with pytest.raises(SignatureDoesNotMatch):
        check(wire.with_headers(x_note="a bc"))


def test_repeated_header_values_are_joined_with_commas() -> None:
    wire = sdk_sign("GET", f"{ENDPOINT}/", {"X-Tag": "a,b", "X-Action": "GetPresetList"})
    raw = [(k.encode(), v.encode()) for k, v in wire.headers.items() if k != "x-tag"]
    headers = Headers(raw=[*raw, (b"x-tag", b"a"), (b"x-tag", b" b ")])
    assert check(wire.replace(headers=headers)).access_key_id == AK


def test_declared_content_sha256_header_is_honoured_and_checked() -> None:
    body = b'{"Preset": "p"}'
    declared = {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}
    wire = sdk_sign("POST", f"{ENDPOINT}/", declared, body)
    assert check(wire).access_key_id == AK
    with pytest.raises(SignatureDoesNotMatch, match="X-Amz-Content-Sha256"):
        check(wire.replace(body=b'{"Preset": "q"}'))


def test_unsigned_payload_only_for_an_empty_body() -> None:
    wire = sdk_sign("GET", f"{ENDPOINT}/?a=1", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert check(wire).access_key_id == AK
    with pytest.raises(IncompleteSignature):
        check(wire.replace(body=b"{}"))


def test_clock_skew_within_fifteen_minutes_is_accepted() -> None:
    wire = get_wire()
    assert check(wire, now=T0 + timedelta(minutes=14, seconds=59)).date == T0
    assert check(wire, now=T0 - timedelta(minutes=15)).date == T0


def test_aws_sigv4_test_suite_vectors() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    assert signing_key(secret, "20120215", "us-east-1", "iam").hex() == (
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    )
    assert signing_key(secret, datetime(2012, 2, 15, 23, tzinfo=UTC), "us-east-1", "iam") == (
        signing_key(secret, "20120215", "us-east-1", "iam")
    )
    cases = [  # (query, extra headers, signed headers, signature) from aws-sig-v4-test-suite
        ("Param2=value2&Param1=value1", {}, "host;x-amz-date",
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ("%E1%88%B4=bar", {}, "host;x-amz-date",
         "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        ("", {"my-header1": " value1", "my-header2": ' "a   b   c"'},
         "host;my-header1;my-header2;x-amz-date",
         "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    ]  # fmt: skip
    for query, extra, signed, signature in cases:
        headers = {
            "host": "example.amazonaws.com",
            "x-amz-date": "20150830T123600Z",
            **extra,
            "authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
            f"service/aws4_request, SignedHeaders={signed}, Signature={signature}",
        }
        identity = verify(
            "GET",
            query,
            headers,
            b"",
            {"AKIDEXAMPLE": secret}.get,
            now=datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
            service="service",
        )
        assert identity.region == "us-east-1"


# --- rejections -------------------------------------------------------------------------


def test_wrong_secret() -> None:
    with pytest.raises(SignatureDoesNotMatch):
        check(get_wire(), secret_for={AK: "not-the-secret"}.get)


def test_unknown_access_key() -> None:
    with pytest.raises(InvalidClientTokenId):
        check(get_wire(), secret_for=NO_KEYS.get)


@pytest.mark.parametrize("offset", [timedelta(minutes=20), timedelta(minutes=-20)])
def test_request_dated_twenty_minutes_away_is_expired(
    offset: timedelta, sdk_clock: Callable[[datetime], None]
) -> None:
    sdk_clock(T0 - offset)
    with pytest.raises(RequestExpired):
        check(get_wire())


TAMPERINGS: dict[str, Callable[[Wire], Wire]] = {
    "body": lambda w: w.replace(body=w.body.replace(b"testpreset", b"testpresex")),
    "query": lambda w: w.replace(raw_query="Extra=1"),
    "x-action": lambda w: w.with_headers(x_action="DelPreset"),
    "x-amz-target": lambda w: w.with_headers(x_amz_target="kvs.DelPreset"),
    "host": lambda w: w.with_headers(host="127.0.0.1:44984"),
    "method": lambda w: w.replace(method="PUT"),
    "path": lambda w: w.replace(path="/other"),
    "content-type": lambda w: w.with_headers(content_type="application/json; charset=utf-8"),
    "x-amz-date": lambda w: w.with_headers(x_amz_date="20261124T160452Z"),
    "signed header dropped": lambda w: w.with_headers(x_version=None),
    "signature": lambda w: w.with_headers(
        authorization=w.headers["authorization"][:-1]
        + ("0" if w.headers["authorization"][-1] != "0" else "1")
    ),
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampered_request_does_not_match(tamper: Callable[[Wire], Wire]) -> None:
    wire = post_wire()
    assert check(wire).access_key_id == AK
    with pytest.raises(SignatureDoesNotMatch):
        check(tamper(wire))


def test_tampered_query_value_does_not_match() -> None:
    wire = get_wire()
    with pytest.raises(SignatureDoesNotMatch):
        check(wire.replace(raw_query=wire.raw_query.replace("0123", "0124")))


def test_unsigned_headers_may_change_freely() -> None:
    wire = post_wire().with_headers(user_agent="other", accept_encoding="gzip", x_extra="1")
    assert check(wire).access_key_id == AK


def test_scope_date_differing_from_x_amz_date() -> None:
    wire = get_wire()
    auth = wire.headers["authorization"].replace("/20261124/", "/20261123/")
    with pytest.raises(IncompleteSignature, match="scope"):
        check(wire.with_headers(authorization=auth))


def test_wrong_service_in_scope() -> None:
    wire = sdk_sign("GET", f"{ENDPOINT}/", {"X-Action": "GetPresetList"}, service="offline")
    with pytest.raises(IncompleteSignature, match="service"):
        check(wire)
    assert check(wire, service="offline").access_key_id == AK


@pytest.mark.parametrize("authorization", [None, "", "   "])
def test_missing_authentication(authorization: str | None) -> None:
    wire = get_wire().with_headers(authorization=authorization)
    with pytest.raises(MissingAuthenticationToken):
        check(wire)


def _sdk_auth() -> str:
    return get_wire().headers["authorization"]


MALFORMED_AUTHORIZATION: dict[str, Callable[[str], str]] = {
    "algorithm": lambda a: a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
    "not sigv4": lambda a: "Basic dXNlcjpwYXNz",
    "no signature": lambda a: a.split(", Signature=")[0],
    "no credential": lambda a: "AWS4-HMAC-SHA256 " + a.split(", ", 1)[1],
    "unknown element": lambda a: a + ", Extra=1",
    "repeated element": lambda a: a + ", Signature=" + "0" * 64,
    "element without =": lambda a: a.replace("SignedHeaders=", "SignedHeaders "),
    "short scope": lambda a: a.replace("/cn-beijing-6/", "/"),
    "scope terminator": lambda a: a.replace("aws4_request", "aws4_reques"),
    "empty region": lambda a: a.replace("/cn-beijing-6/", "//"),
    "host not signed": lambda a: a.replace("host;", ""),
    "empty signed header": lambda a: a.replace("host;", "host;;"),
    "signature not hex": lambda a: a[:-1] + "z",
    "signature too short": lambda a: a[:-2],
}


@pytest.mark.parametrize(
    "mangle", MALFORMED_AUTHORIZATION.values(), ids=MALFORMED_AUTHORIZATION.keys()
)
def test_malformed_authorization_header(mangle: Callable[[str], str]) -> None:
    wire = get_wire()
    with pytest.raises(IncompleteSignature):
        check(wire.with_headers(authorization=mangle(wire.headers["authorization"])))


@pytest.mark.parametrize(
    "amz_date", ["20261124T160451", "2026-11-24T16:04:51Z", "20261324T160451Z", ""]
)
def test_malformed_x_amz_date(amz_date: str) -> None:
    with pytest.raises(IncompleteSignature):
        check(get_wire().with_headers(x_amz_date=amz_date))


def test_no_timestamp_at_all() -> None:
    with pytest.raises(IncompleteSignature, match="Date"):
        check(get_wire().with_headers(x_amz_date=None))


def test_malformed_date_header() -> None:
    wire = sdk_sign("GET", f"{ENDPOINT}/", {"Date": "placeholder"})
    with pytest.raises(IncompleteSignature):
        check(wire.with_headers(date="yesterday"))


def test_two_authorization_carriers_are_refused() -> None:
    wire = get_wire()
    with pytest.raises(IncompleteSignature, match="one auth"):
        check(wire.replace(raw_query=wire.raw_query + "&X-Amz-Signature=" + "0" * 64))


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        check(get_wire(), now=T0.replace(tzinfo=None))


# --- query form -------------------------------------------------------------------------

CJK_QUERY = "Preset=%E4%B8%AD%E6%96%87%20a%2Bb%2F%3F%3D%26~%2A%27%28%29%21&L=2&L=1&Empty="


def test_presigned_get_verifies() -> None:
    url = presign_url("GET", f"{ENDPOINT}/?{CJK_QUERY}", AK, SK, REGION, now=T0)
    parts = urlsplit(url)
    assert parts.query.startswith(CJK_QUERY + "&X-Amz-Algorithm=AWS4-HMAC-SHA256&")
    assert "X-Amz-Credential=AKLOCALTEST0000000001%2F20261124%2Fcn-beijing-6%2Fkvs%2F" in url

    # An unsigned extra header does not break the signature; it is not in signed_headers,
    # so the router refuses to take the action from it (test_routing_params.py).
    wire = url_wire(url, x_action="GetPresetDetail")
    assert check(wire) == SignedIdentity(AK, REGION, T0, frozenset({"host"}))


def test_presigned_post_covers_the_body() -> None:
    body = '{"Preset": "中文"}'.encode()
    url = presign_url(
        "POST", f"{ENDPOINT}/?Action=Preset&Version=2017-01-01", AK, SK, REGION, now=T0, body=body
    )
    assert check(url_wire(url, "POST", body)).access_key_id == AK
    with pytest.raises(SignatureDoesNotMatch):
        check(url_wire(url, "POST", b'{"Preset": "x"}'))
    with pytest.raises(SignatureDoesNotMatch):
        check(url_wire(url, "GET", body))


def test_presigned_url_without_path_or_query() -> None:
    url = presign_url("GET", "https://kvs.cn-beijing-6.api.ksyun.com", AK, SK, REGION, now=T0)
    assert url.startswith("https://kvs.cn-beijing-6.api.ksyun.com/?X-Amz-Algorithm=")
    assert check(url_wire(url)).region == REGION


def test_presigned_with_session_token() -> None:
    url = presign_url("GET", f"{ENDPOINT}/", AK, SK, REGION, now=T0, session_token="t/+=")
    assert "X-Amz-Security-Token=t%2F%2B%3D" in url
    assert check(url_wire(url)).access_key_id == AK
    with pytest.raises(SignatureDoesNotMatch):
        check(url_wire(url.replace("t%2F%2B%3D", "t%2F%2B%3E")))


def test_kscore_query_auth_presigned_url_verifies() -> None:
    url = sdk_presign(f"{ENDPOINT}/?TaskID={TASK_ID}&Note=%E4%B8%AD%20x", expires=600)
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=600" in url
    assert check(url_wire(url), now=T0 + timedelta(seconds=600)).date == T0
    with pytest.raises(RequestExpired):
        check(url_wire(url), now=T0 + timedelta(seconds=601))


def test_query_form_expiry_follows_x_amz_expires() -> None:
    url = presign_url("GET", f"{ENDPOINT}/?a=1", AK, SK, REGION, now=T0)
    wire = url_wire(url)
    assert check(wire, now=T0 + timedelta(minutes=59)).date == T0  # beyond the 15 min skew
    assert check(wire, now=T0 + timedelta(seconds=3600)).date == T0
    with pytest.raises(RequestExpired, match="expired"):
        check(wire, now=T0 + timedelta(seconds=3601))
    with pytest.raises(RequestExpired, match="future"):
        check(wire, now=T0 - timedelta(minutes=16))
    assert check(wire, now=T0 - timedelta(minutes=14)).date == T0

    short = url_wire(presign_url("GET", f"{ENDPOINT}/", AK, SK, REGION, now=T0, expires=60))
    with pytest.raises(RequestExpired):
        check(short, now=T0 + timedelta(seconds=61))


def test_query_form_default_expiry_is_one_hour() -> None:
    url = presign_url("GET", f"{ENDPOINT}/", AK, SK, REGION, now=T0)
    without = url.replace("&X-Amz-Expires=3600", "")
    # Removing the parameter changes the canonical query, so it no longer matches ...
    with pytest.raises(SignatureDoesNotMatch):
        check(url_wire(without))
    # ... but it is still read with the 3600 s default before the signature is checked.
    with pytest.raises(RequestExpired):
        check(url_wire(without), now=T0 + timedelta(seconds=3601))


QUERY_TAMPERINGS: dict[str, Callable[[str], str]] = {
    "parameter value": lambda u: u.replace("a=1", "a=2"),
    "added parameter": lambda u: u + "&b=2",
    "expires": lambda u: u.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200"),
    "signed headers": lambda u: u.replace("SignedHeaders=host", "SignedHeaders=host%3Bx-action"),
}


@pytest.mark.parametrize("tamper", QUERY_TAMPERINGS.values(), ids=QUERY_TAMPERINGS.keys())
def test_tampered_presigned_url_does_not_match(tamper: Callable[[str], str]) -> None:
    url = presign_url("GET", f"{ENDPOINT}/?a=1", AK, SK, REGION, now=T0)
    with pytest.raises(SignatureDoesNotMatch):
        check(url_wire(tamper(url), x_action="GetPresetList"))


def test_presigned_url_on_another_host_does_not_match() -> None:
    url = presign_url("GET", f"{ENDPOINT}/", AK, SK, REGION, now=T0)
    with pytest.raises(SignatureDoesNotMatch):
        check(url_wire(url).with_headers(host="127.0.0.1:1"))


MALFORMED_QUERY: dict[str, Callable[[str], str]] = {
    "algorithm": lambda u: u.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
    "no date": lambda u: u.replace("X-Amz-Date=", "X-Amz-Datum="),
    "bad date": lambda u: u.replace("X-Amz-Date=20261124T160451Z", "X-Amz-Date=20261124"),
    "no credential": lambda u: u.replace("X-Amz-Credential=", "X-Amz-Kredential="),
    "no signed headers": lambda u: u.replace("X-Amz-SignedHeaders=", "X-Amz-Signedheaders="),
    "no signature": lambda u: u.replace("X-Amz-Signature=", "X-Amz-Sig="),
    "repeated signature": lambda u: u + "&X-Amz-Signature=" + "0" * 64,
    "expires zero": lambda u: u.replace("X-Amz-Expires=3600", "X-Amz-Expires=0"),
    "expires text": lambda u: u.replace("X-Amz-Expires=3600", "X-Amz-Expires=soon"),
    "expires over a week": lambda u: u.replace("X-Amz-Expires=3600", "X-Amz-Expires=604801"),
    "scope date": lambda u: u.replace("%2F20261124%2F", "%2F20261125%2F"),
    "service": lambda u: u.replace("%2Fkvs%2F", "%2Fs3%2F"),
}


@pytest.mark.parametrize("mangle", MALFORMED_QUERY.values(), ids=MALFORMED_QUERY.keys())
def test_malformed_query_authentication(mangle: Callable[[str], str]) -> None:
    url = presign_url("GET", f"{ENDPOINT}/", AK, SK, REGION, now=T0)
    with pytest.raises(IncompleteSignature):
        check(url_wire(mangle(url)))


def test_query_form_unknown_key_and_wrong_secret() -> None:
    wire = url_wire(presign_url("GET", f"{ENDPOINT}/", AK, SK, REGION, now=T0))
    with pytest.raises(InvalidClientTokenId):
        check(wire, secret_for=NO_KEYS.get)
    with pytest.raises(SignatureDoesNotMatch):
        check(wire, secret_for={AK: "nope"}.get)


def test_presign_url_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        presign_url("GET", f"{ENDPOINT}/", AK, SK, REGION, now=T0, expires=0)
    with pytest.raises(ValueError):
        presign_url("GET", f"{ENDPOINT}/", AK, SK, REGION, now=T0, expires=604801)
    with pytest.raises(ValueError):
        presign_url("GET", "/relative", AK, SK, REGION, now=T0)
    with pytest.raises(ValueError):
        presign_url("GET", f"{ENDPOINT}/", AK, SK, REGION, now=T0.replace(tzinfo=None))


# --- '+' in a raw query -----------------------------------------------------------------


def test_raw_plus_is_a_space_and_percent_2b_a_plus() -> None:
    # Signed over the decoded value "a b": %20 and a raw '+' are the same request (as for
    # AWS, and as Starlette's parse_qsl reads it); %2B is a different value.
    url = presign_url("GET", f"{ENDPOINT}/?q=a%20b", AK, SK, REGION, now=T0)
    assert check(url_wire(url)).access_key_id == AK
    assert check(url_wire(url.replace("q=a%20b", "q=a+b"))).access_key_id == AK
    with pytest.raises(SignatureDoesNotMatch):
        check(url_wire(url.replace("q=a%20b", "q=a%2Bb")))


def test_canonical_query_normalises_encoding_and_order() -> None:
    pairs = sigv4._parse_query("b=2&a=%7e&a=1&c&%E4%B8%AD=x+y&d=%2b&e=%zz")
    assert sigv4.canonical_query(pairs) == ("%E4%B8%AD=x%20y&a=1&a=~&b=2&c=&d=%2B&e=%25zz")


def test_claimed_access_key_reads_the_claim_without_the_body() -> None:
    header = (
        f"AWS4-HMAC-SHA256 Credential={AK}/20261124/{REGION}/kvs/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
    )
    headers = {"authorization": header, "x-amz-date": "20261124T160451Z", "host": "h"}
    assert sigv4.claimed_access_key("", headers) == AK  # the wrong signature is not checked
    query = urlsplit(presign_url("GET", f"{ENDPOINT}/?Action=X", AK, SK, REGION, now=T0)).query
    assert sigv4.claimed_access_key(query, {"host": "h"}) == AK
    with pytest.raises(MissingAuthenticationToken):
        sigv4.claimed_access_key("Action=X", {"host": "h"})
    with pytest.raises(IncompleteSignature):
        sigv4.claimed_access_key(query, headers)  # both carriers
    with pytest.raises(IncompleteSignature):
        sigv4.claimed_access_key("", {**headers, "authorization": "AWS4-HMAC-SHA256 nonsense"})


@pytest.mark.parametrize(
    "value",
    ["20261124T160451Z", "20240229T235959Z", "00010101T000000Z", "99991231T235959Z"],
)
def test_amz_date_parses_as_strptime_does(value: str) -> None:
    expected = datetime.strptime(value, sigv4.AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    assert sigv4._parse_amz_date(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "20261324T160451Z",  # month 13
        "20250229T000000Z",  # not a leap year
        "20261100T000000Z",  # day 0
        "20261124T240000Z",  # hour 24
        "20261124T166051Z",  # minute 60
        "20261124T160460Z",  # second 60
        "00001124T160451Z",  # year 0
        "20261124T160451",  # no Z
        "2026-11-24T16:04:51Z",
    ],
)
def test_amz_date_out_of_range_is_incomplete_signature(value: str) -> None:
    with pytest.raises(IncompleteSignature, match="X-Amz-Date"):
        sigv4._parse_amz_date(value)
