"""Reading a request body within ``OPENKVS_MAX_BODY_BYTES``, and only for a known key.

* A ``Content-Length`` over the limit is answered 413 ``RequestEntityTooLarge`` before a
  byte of the body is read; a chunked body is read piece by piece and refused as soon as it
  passes the limit. Either way at most ``limit`` bytes (plus one network read) are held.
* Before a body is read, the request must carry SigV4 credentials (header or query form)
  naming an existing access key (:func:`sigv4.claimed_access_key`, then a key lookup):
  an anonymous client cannot make the server hold any body. The full signature, which
  covers the body, is verified afterwards. Bodies of at most :data:`PREREAD_BYTES` declared
  by ``Content-Length`` are read at once and checked with the signature: the HTTP server
  has buffered that much per connection already (uvicorn reads up to 64 KiB ahead before
  it pauses a connection), so checking first would protect nothing and cost every ordinary
  request a second look at its credentials.

An answer given before the body was read completely asks the client to close the
connection (:func:`answer_closes`), so the server does not read and discard the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from openkvs.api import sigv4
from openkvs.errors import InvalidClientTokenId, RequestEntityTooLarge

#: Bodies declared this small are read without looking the key up first (see above).
PREREAD_BYTES = 64 * 1024

#: Marks a request whose body was not (completely) read: its answer closes the connection.
_UNREAD = "openkvs.body_unread"


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:  # the HTTP parser refuses these; kept safe anyway
        return None


def _has_body(request: Request, declared: int | None) -> bool:
    if declared is not None:
        return declared > 0
    return "chunked" in request.headers.get("transfer-encoding", "").lower()


def declares_body(request: Request) -> bool:
    """Whether the request says it carries a body (``Content-Length`` > 0, or chunked)."""
    return _has_body(request, _declared_length(request))


async def read_body(
    request: Request,
    limit: int,
    key_exists: Callable[[str], object],
) -> bytes:
    """The whole body, at most ``limit`` bytes, once the credentials name a known key
    (for bodies over :data:`PREREAD_BYTES` or of unknown length).

    ``key_exists(access_key_id)`` runs in a worker thread and returns something true for a
    key that exists. Raises :class:`RequestEntityTooLarge`, or before reading the gateway
    errors of a missing, malformed (:class:`MissingAuthenticationToken`,
    :class:`IncompleteSignature`) or unknown (:class:`InvalidClientTokenId`) credential.
    """
    declared = _declared_length(request)
    if not _has_body(request, declared):
        return b""
    request.scope[_UNREAD] = True
    if declared is not None and declared > limit:
        raise RequestEntityTooLarge(
            f"The request body ({declared} bytes) is larger than {limit} bytes."
        )
    if declared is None or declared > PREREAD_BYTES:
        access_key_id = sigv4.claimed_access_key(
            request.scope.get("query_string", b"").decode("latin-1"), request.headers
        )
        if not await run_in_threadpool(key_exists, access_key_id):
            raise InvalidClientTokenId()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestEntityTooLarge(f"The request body is larger than {limit} bytes.")
    request.scope[_UNREAD] = False
    return bytes(body)


def answer_closes(request: Request) -> bool:
    """Whether the answer to ``request`` should close the connection: its body was not
    read to the end (reading it only to discard it would cost time for nothing)."""
    return bool(request.scope.get(_UNREAD))
