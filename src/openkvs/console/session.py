"""Console sessions: signed, expiring cookies; no session table, no secret in the browser.

Signing in checks an access key pair once; the cookie then holds only
``base64url(JSON{"k": AccessKeyId, "u": user id, "e": expiry, "n": nonce})`` and an
HMAC-SHA256 of it, keyed with the data key's ``console-session`` subkey
(``Sealer.derive``). Every request checks the signature (constant time), the expiry and
that the access key still exists unrevoked and belongs to the same user: revoking the key
(``openkvs keys revoke``) ends its sessions within ``OPENKVS_KEY_CACHE_SECONDS``.

CSRF: every state-changing request carries the session's token (a hidden form field
``csrf`` or the header ``X-CSRF-Token``), an HMAC of the session's nonce under the
``console-csrf`` subkey; it is compared in constant time. The sign-in form itself is
protected by a double-submit token (a short-lived ``okvs_signin`` cookie and the same value
in the form). Cookies are ``HttpOnly; SameSite=Strict; Path=/console`` (and ``Secure``
when the request came over HTTPS).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

#: How long a session lasts after signing in (there is no sliding renewal).
SESSION_SECONDS = 8 * 3600
COOKIE = "okvs_session"
SIGNIN_COOKIE = "okvs_signin"
SIGNIN_SECONDS = 3600
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_PURPOSE = "console-session"
CSRF_PURPOSE = "console-csrf"


@dataclass(frozen=True)
class Session:
    """What a valid cookie says: the key it was opened with and its user."""

    access_key_id: str
    user_id: int
    expires_at: int
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))


class SessionSigner:
    """Issues and reads session cookies with two subkeys of the data key."""

    def __init__(self, session_key: bytes, csrf_key: bytes) -> None:
        self._session_key = session_key
        self._csrf_key = csrf_key

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._session_key, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, access_key_id: str, user_id: int, now: float) -> tuple[str, Session]:
        """A new session: (cookie value, session)."""
        session = Session(
            access_key_id, user_id, int(now) + SESSION_SECONDS, _b64(secrets.token_bytes(18))
        )
        body = {
            "k": session.access_key_id,
            "u": user_id,
            "e": session.expires_at,
            "n": session.nonce,
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._mac(payload)}", session

    def read(self, cookie: str | None, now: float) -> Session | None:
        """The session a cookie holds, or None (absent, forged, malformed or expired)."""
        if not cookie or cookie.count(".") != 1 or len(cookie) > 1024:
            return None
        payload, mac = cookie.split(".")
        try:
            if not hmac.compare_digest(self._mac(payload).encode(), mac.encode("ascii")):
                return None
            body = json.loads(_unb64(payload))
            session = Session(str(body["k"]), int(body["u"]), int(body["e"]), str(body["n"]))
        except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
            return None
        return session if now < session.expires_at else None

    def csrf_token(self, session: Session) -> str:
        return _b64(
            hmac.new(self._csrf_key, session.nonce.encode("ascii"), hashlib.sha256).digest()
        )

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        if not token:
            return False
        try:
            given = token.encode("ascii")
        except UnicodeError:
            return False
        return hmac.compare_digest(self.csrf_token(session).encode("ascii"), given)


def new_signin_token() -> str:
    return _b64(secrets.token_bytes(18))


def signin_token_ok(cookie: str | None, field: str | None) -> bool:
    """The double-submit check of the sign-in form."""
    if not cookie or not field:
        return False
    try:
        return hmac.compare_digest(cookie.encode("ascii"), field.encode("ascii"))
    except UnicodeError:
        return False


def cookie_header(name: str, value: str, max_age: int, *, secure: bool) -> str:
    """A ``Set-Cookie`` value scoped to the console (``max_age`` 0 deletes it)."""
    parts = [
        f"{name}={value}",
        "Path=/console",
        f"Max-Age={max_age}",
        "HttpOnly",
        "SameSite=Strict",
    ]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
