"""Console session cookies and CSRF tokens (``console/session.py``): pure functions."""

from __future__ import annotations

from openkvs.console.session import (
    SESSION_SECONDS,
    SessionSigner,
    cookie_header,
    signin_token_ok,
)

NOW = 1_800_000_000.0


def signer(seed: bytes = b"a") -> SessionSigner:
    return SessionSigner(seed * 32, b"c" * 32)


def test_a_cookie_reads_back_until_it_expires() -> None:
    cookie, session = signer().issue("AKEXAMPLE", 7, NOW)
    found = signer().read(cookie, NOW + 10)
    assert found == session and found.user_id == 7 and found.access_key_id == "AKEXAMPLE"
    assert found.expires_at == int(NOW) + SESSION_SECONDS
    assert signer().read(cookie, NOW + SESSION_SECONDS) is None


def test_forged_or_foreign_cookies_are_refused() -> None:
    cookie, _ = signer().issue("AKEXAMPLE", 7, NOW)
    payload, mac = cookie.split(".")
    other_payload, _ = signer().issue("AKOTHER", 8, NOW)[0].split(".")
    for bad in (
        None,
        "",
        "garbage",
        f"{other_payload}.{mac}",  # another session's payload under this signature
        f"{payload}.{mac[:-1]}",
        f"{payload}.{mac}.x",
        "é.é",
    ):
        assert signer().read(bad, NOW) is None, bad
    assert signer(b"b").read(cookie, NOW) is None  # another data key


def test_csrf_tokens_belong_to_one_session() -> None:
    one = signer().issue("AK1", 1, NOW)[1]
    two = signer().issue("AK1", 1, NOW)[1]
    token = signer().csrf_token(one)
    assert signer().csrf_ok(one, token)
    assert not signer().csrf_ok(two, token)
    assert not signer().csrf_ok(one, None) and not signer().csrf_ok(one, "é")


def test_cookie_attributes() -> None:
    header = cookie_header("okvs_session", "v", 60, secure=False)
    assert header == "okvs_session=v; Path=/console; Max-Age=60; HttpOnly; SameSite=Strict"
    assert cookie_header("x", "", 0, secure=True).endswith("; Secure")


def test_signin_double_submit() -> None:
    assert signin_token_ok("abc", "abc")
    assert not signin_token_ok("abc", "abd") and not signin_token_ok(None, "abc")
    assert not signin_token_ok("abc", "é")
