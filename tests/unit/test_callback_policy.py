"""The callback address policy: URL forms, refused ranges, the operator's allow list, names."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from openkvs.config import ConfigError, load
from openkvs.errors import ApiError
from openkvs.notify.policy import (
    AddressPolicy,
    AddressRefused,
    CallbackRefused,
    IPAddress,
    UnusableUrl,
    check_callback_url,
    host_key,
    parse_callback_url,
)
from openkvs.service import params as p

DEFAULT = AddressPolicy()
PUBLIC = [ip_address("93.184.216.34")]


def _no_lookup(host: str) -> list[IPAddress] | None:
    raise AssertionError(f"{host} should not be looked up")


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/cb\r\nX-Injected: 1",
        "http://example.com/cb\n",
        "http://example.com/a b",
        "http://example.com/\tcb",
        "http://example.com/\x00",
        "http://example.com/\x7f",
        " http://example.com/cb",
        "http://exämple.com/cb",
        "ftp://example.com/cb",
        "file:///etc/passwd",
        "gopher://example.com/",
        "javascript:alert(1)",
        "example.com/cb",
        "//example.com/cb",
        "http://user:pw@example.com/cb",
        "http://user@example.com/cb",
        "http://evil.com\\@127.0.0.1/",
        "http:///cb",
        "http://:80/cb",
        "http://example.com:0/cb",
        "http://example.com:99999/cb",
        "http://example.com:http/cb",
        "http://[::1/cb",
        "http://[fe80::1%25eth0]/cb",
        "http://[127.0.0.1]/cb",
        "http://2130706433/cb",
        "http://0x7f000001/cb",
        "http://0x7f.1/cb",
        "http://127.1/cb",
        "http://017700000001/cb",
        "http://exa_mple..com/cb",
        "http://-/cb",
        "http://" + "a" * 64 + ".com/",
        "http://example.com/" + "a" * 2100,
    ],
)
def test_unusable_forms_are_refused(url: str) -> None:
    with pytest.raises(UnusableUrl):
        parse_callback_url(url)
    with pytest.raises(ApiError) as info:
        p.callback_url({"CbUrl": url}, AddressPolicy((ip_network("0.0.0.0/0"),)))
    assert info.value.code == 1001


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/cb",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/cb",
        "http://172.16.5.4/cb",
        "http://192.168.1.1/cb",
        "http://100.64.0.1/cb",
        "http://0.0.0.0/cb",
        "http://224.0.0.1/cb",
        "http://255.255.255.255/cb",
        "http://[::1]/cb",
        "http://[::]/cb",
        "http://[fe80::1]/cb",
        "http://[fc00::1]/cb",
        "http://[fd00:ec2::254]/cb",
        "http://[ff02::1]/cb",
        "http://[::ffff:127.0.0.1]/cb",
        "http://[::ffff:169.254.169.254]/cb",
        "http://[::ffff:a00:1]/cb",
        "http://[::7f00:1]/cb",
        "http://[64:ff9b::a9fe:a9fe]/cb",
        "http://[2002:7f00:1::]/cb",
        "http://[2001:db8::1]/cb",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.google.internal./",
        "http://metadata/",
        "http://instance-data/latest/",
        "http://localhost:8000/cb",
        "http://api.localhost/cb",
    ],
)
def test_refused_destinations_by_default(url: str) -> None:
    with pytest.raises(AddressRefused):
        check_callback_url(url, DEFAULT, _no_lookup)
    with pytest.raises(ApiError) as info:
        p.callback_url({"CbUrl": url}, DEFAULT, resolve=_no_lookup)
    assert info.value.code == 1001


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/cb",
        "https://8.8.8.8:8443/cb?x=1&y=%20",
        "http://[2606:4700:4700::1111]/cb",
        "http://[2002:808:808::1]/cb",  # 6to4 of a public address
        "http://[64:ff9b::808:808]/cb",  # NAT64 of a public address
        "http://[::ffff:93.184.216.34]/cb",
    ],
)
def test_public_addresses_are_accepted(url: str) -> None:
    assert check_callback_url(url, DEFAULT, _no_lookup).literal is not None
    assert p.callback_url({"CbUrl": url}, DEFAULT, resolve=_no_lookup) == url


def test_the_operator_allows_ranges() -> None:
    loopback = AddressPolicy((ip_network("127.0.0.0/8"), ip_network("::1/128")))
    for url in ("http://127.0.0.1:9/cb", "http://[::1]:9/", "http://[::ffff:127.0.0.1]/"):
        check_callback_url(url, loopback, _no_lookup)
    check_callback_url("http://localhost:9/cb", loopback, _no_lookup)
    for url in ("http://10.0.0.1/", "http://169.254.169.254/"):
        with pytest.raises(AddressRefused):
            check_callback_url(url, loopback, _no_lookup)
    wide = AddressPolicy((ip_network("10.0.0.0/8"), ip_network("169.254.0.0/16")))
    check_callback_url("http://10.0.0.1/", wide, _no_lookup)
    check_callback_url("http://169.254.169.254/", wide, _no_lookup)
    with pytest.raises(AddressRefused):
        check_callback_url("http://127.0.0.1/", wide, _no_lookup)
    # Metadata names stay refused whatever the ranges.
    everything = AddressPolicy((ip_network("0.0.0.0/0"), ip_network("::/0")))
    with pytest.raises(AddressRefused, match="metadata"):
        check_callback_url("http://metadata.google.internal/", everything, _no_lookup)


def test_names_are_checked_by_what_they_resolve_to() -> None:
    def resolve(answers: list[str] | None) -> object:
        return lambda host: None if answers is None else [ip_address(a) for a in answers]

    check_callback_url("https://hooks.example.com/x", DEFAULT, resolve(["93.184.216.34"]))  # type: ignore[arg-type]
    for answers in (["10.1.2.3"], ["93.184.216.34", "127.0.0.1"], ["::1"], []):
        with pytest.raises(AddressRefused):
            check_callback_url("https://hooks.example.com/x", DEFAULT, resolve(answers))  # type: ignore[arg-type]
    # Not resolvable (yet): accepted now, checked again when the callback is sent.
    check_callback_url("https://not-yet.example.com/x", DEFAULT, resolve(None))  # type: ignore[arg-type]


def test_target_parts() -> None:
    target = parse_callback_url("HTTP://Hooks.Example.COM./a/b?q=1#frag")
    assert (target.scheme, target.host, target.port, target.target) == (
        "http",
        "hooks.example.com",
        80,
        "/a/b?q=1",
    )
    assert target.host_header == "hooks.example.com"
    assert parse_callback_url("https://h.example:8443").host_header == "h.example:8443"
    assert parse_callback_url("https://h.example:8443").target == "/"
    v6 = parse_callback_url("http://[2606:4700::1]:81/x")
    assert v6.host == "2606:4700::1" and v6.host_header == "[2606:4700::1]:81"
    assert host_key("http://A.example:1/x") == host_key("https://a.example/y") == "a.example"
    assert host_key("http://bad host/\r\n") == ""


def test_refusals_share_one_base() -> None:
    assert issubclass(UnusableUrl, CallbackRefused) and issubclass(AddressRefused, CallbackRefused)


def test_allow_setting() -> None:
    settings = load({"OPENKVS_CALLBACK_ALLOW": "127.0.0.0/8, ::1/128,10.0.0.0/8"})
    assert settings.callback_allow == (
        ip_network("127.0.0.0/8"),
        ip_network("::1/128"),
        ip_network("10.0.0.0/8"),
    )
    assert load({}).callback_allow == ()
    assert load({"OPENKVS_CALLBACK_ALLOW": ""}).callback_allow == ()
    for bad in ("10.0.0.1/8", "localhost", "10.0.0.0/33", "10/8;"):
        with pytest.raises(ConfigError, match="OPENKVS_CALLBACK_ALLOW"):
            load({"OPENKVS_CALLBACK_ALLOW": bad})
    for name in ("OPENKVS_CALLBACK_PER_HOST", "OPENKVS_CALLBACK_CONCURRENCY"):
        with pytest.raises(ConfigError):
            load({name: "0"})
