"""Callback signatures in the Standard Webhooks layout. Pure functions.

Each callback carries three headers:

* ``webhook-id``: the message id, the same for every attempt of one callback;
* ``webhook-timestamp``: unix seconds when the attempt was sent;
* ``webhook-signature``: ``v1,`` + base64 of HMAC-SHA256(key, ``"{id}.{timestamp}.{body}"``),
  where the user's secret is ``whsec_`` + base64 of the key.

Receivers verify with the ``standardwebhooks`` library or a few lines of stdlib Python
(``docs/callbacks.md``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SECRET_PREFIX = "whsec_"


class BadSecret(ValueError):
    """A signing secret that is not ``whsec_`` followed by base64."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_...`` secret (the prefix is optional, padding too)."""
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadSecret("the signing secret is not base64") from exc
    if not key:
        raise BadSecret("the signing secret is empty")
    return key


def message_id(task_id: str, callback_id: int) -> str:
    """The ``webhook-id`` of a callback: stable across its attempts, unique across tasks."""
    return f"msg_{task_id}_{callback_id}"


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }
