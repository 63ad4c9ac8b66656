"""Callback signatures: the published Standard Webhooks vector and the reference library."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook

from openkvs.notify.signing import (
    BadSecret,
    message_id,
    secret_key,
    signature,
    signed_headers,
)

# The Standard Webhooks test vector (its reference libraries' sign test).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_published_vector() -> None:
    assert signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    # The prefix is optional, as in the reference libraries.
    assert signature(VECTOR_SECRET[6:], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == (
        VECTOR_SIGNATURE
    )


def test_headers_verify_with_the_reference_library() -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    body = '{"TaskID":"t","Details":{"errmsg":"成功"}}'.encode()
    headers = signed_headers(secret, message_id("t" * 40, 7), int(time.time()), body)
    assert headers["webhook-id"] == "msg_" + "t" * 40 + "_7"
    assert Webhook(secret).verify(body, headers) == {"TaskID": "t", "Details": {"errmsg": "成功"}}
    tampered = body.replace(b"TaskID", b"TaskId")
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(tampered, headers)


def test_secret_keys() -> None:
    assert secret_key("whsec_AAEC") == b"\x00\x01\x02"
    assert secret_key("AAEC") == b"\x00\x01\x02"
    for bad in ("whsec_", "whsec_***", "whsec_A"):
        with pytest.raises(BadSecret):
            secret_key(bad)
