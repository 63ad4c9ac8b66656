"""AWS Signature Version 4 verification for the KVS gateway (spec kvs-api.md §1.4).

Pure functions over the request as received: no I/O, stdlib only. :func:`verify` accepts
both carriers, the ``Authorization`` header (all SDKs) and the query form (documentation
examples, :func:`presign_url`), and raises the gateway errors of ``openkvs.errors``.

Canonicalisation decisions, all chosen so that what is verified is what the application
reads (Starlette parses queries with :func:`urllib.parse.parse_qsl`):

* Query: each ``k=v`` pair is percent-decoded to bytes and re-encoded RFC 3986 style
  (unreserved ``A-Za-z0-9-_.~``), then sorted by (key, value); repeated keys are kept and a
  key without ``=`` counts as an empty value. A raw ``+`` is form-decoded as a space (so it
  canonicalises to ``%20``) and ``%2B`` stays a literal plus. This is what AWS's own servers
  do (S3 accepts ``+`` for a space; Ceph RGW and curl canonicalise ``+`` to ``%20``), and it
  matches how the application decodes the same query. The SDK never sends a raw ``+``.
* Headers: each signed header's values are trimmed, runs of spaces collapsed, and several
  values of one header joined by ``,`` in the order received (use a mapping with
  ``getlist``, e.g. Starlette's ``Headers``, to expose repeated headers).
* URI: ``quote(remove_dot_segments(path), safe="/~")`` of the raw path, as ``kscore`` does.
* Payload: SHA-256 of the body, or ``X-Amz-Content-Sha256`` when given; a declared hash must
  equal the body's real hash (otherwise the body would not be covered), and
  ``UNSIGNED-PAYLOAD`` is accepted only for an empty body.
* Time: header form, ``|now - date| <= max_skew_seconds``. Query form follows AWS presigned
  URLs: not dated more than ``max_skew_seconds`` in the future and ``now <= date + expires``
  (``X-Amz-Expires``, default 3600, at most 604800).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes, urlsplit, urlunsplit

from openkvs.errors import (
    IncompleteSignature,
    InvalidClientTokenId,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureDoesNotMatch,
)

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
DEFAULT_EXPIRES = 3600
MAX_EXPIRES = 604800  # one week, AWS's limit for presigned URLs
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

_AMZ_DATE_RE = re.compile(r"\d{8}T\d{6}Z")
_HEX64_RE = re.compile(r"[0-9a-fA-F]{64}")
_SPACES_RE = re.compile(" +")
_QUERY_AUTH_KEYS = frozenset({b"X-Amz-Algorithm", b"X-Amz-Credential", b"X-Amz-Signature"})
_HEADER_AUTH_FIELDS = frozenset({"Credential", "SignedHeaders", "Signature"})

QueryPairs = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class SignedIdentity:
    """Who signed a verified request, for which region (from the credential scope), and
    which headers the signature covers (the query and the body are always covered)."""

    access_key_id: str
    region: str
    date: datetime  # the request's X-Amz-Date (UTC, aware)
    #: The SignedHeaders names, lower-case: a header outside it may have been changed by
    #: anyone, so nothing that decides what the request does may be read from it.
    signed_headers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Claim:
    """What the request says was signed, before anything is checked against a secret."""

    access_key_id: str
    scope_date: str
    region: str
    service: str
    signed_headers: str  # the SignedHeaders value as sent
    signature: str  # lower-case hex
    amz_date: str  # yyyymmddTHHMMSSZ, as it enters the string to sign
    date: datetime
    expires: int | None  # query form only


def verify(
    method: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    secret_for: Callable[[str], str | None],
    *,
    now: datetime,
    service: str = "kvs",
    max_skew_seconds: int = 900,
    path: str = "/",
    latin1_payload_fallback: bool = False,
) -> SignedIdentity:
    """Verify a SigV4-signed request and return the signer, or raise a gateway error.

    The signature covers the method, path, query, body and the headers named in
    ``SignedIdentity.signed_headers`` only: callers must not let any other header decide
    what the request does (the action headers, for one: see ``routing.resolve_action``).

    ``headers`` has lower-case names and values as received; ``raw_query`` is the query
    string as received (no ``?``, UTF-8 text); ``path`` the raw request path. ``now`` must be
    timezone-aware. ``latin1_payload_fallback`` enables the Java ``KSCKVSApiClient``
    workaround of spec §1.4 (that client hashes the body as ISO-8859-1 with ``?``
    replacement but sends UTF-8).

    Raises, in this order of checks: :class:`MissingAuthenticationToken` (no signature at
    all), :class:`IncompleteSignature` (malformed or wrongly scoped),
    :class:`InvalidClientTokenId` (``secret_for`` returned ``None``),
    :class:`RequestExpired`, :class:`SignatureDoesNotMatch`.
    """
    now = _require_aware(now)
    pairs = _parse_query(raw_query)
    claim, query_signed = _carried_claim(pairs, headers)
    if query_signed:
        canonical_pairs = [(k, v) for k, v in pairs if k != b"X-Amz-Signature"]
    else:
        canonical_pairs = pairs

    _check_scope(claim, service)
    secret = secret_for(claim.access_key_id)
    if secret is None:
        raise InvalidClientTokenId()
    _check_time(claim, now, max_skew_seconds)

    # X-Amz-Content-Sha256 may travel in the query only when the query carries the signature.
    declared = _declared_payload_hash(pairs if query_signed else [], headers)
    payload_hash = _payload_hash(declared, body)
    head = canonical_request(
        method,
        path,
        canonical_query(canonical_pairs),
        _canonical_headers(headers, claim.signed_headers),
        claim.signed_headers,
        payload_hash,
    )
    key = signing_key(secret, claim.scope_date, claim.region, claim.service)
    identity = SignedIdentity(
        claim.access_key_id,
        claim.region,
        claim.date,
        frozenset(name.lower() for name in claim.signed_headers.split(";")),
    )
    if _matches(key, claim, head):
        return identity
    if latin1_payload_fallback and declared is None and not body.isascii():
        legacy = body.decode("utf-8", "replace").encode("latin-1", "replace")
        head = head[: -len(payload_hash)] + hashlib.sha256(legacy).hexdigest()
        if _matches(key, claim, head):
            return identity
    raise SignatureDoesNotMatch()


def signing_key(secret: str, date: str | datetime, region: str, service: str = "kvs") -> bytes:
    """The SigV4 derived key; ``date`` is ``yyyymmdd`` or a datetime (its UTC date).

    Derived keys are remembered (the most recent 1,024): a key changes once a day, and its
    four HMACs would otherwise be computed again for every request of the same client."""
    day = _aware_utc(date).strftime("%Y%m%d") if isinstance(date, datetime) else date
    return _derived_key(secret, day, region, service)


@functools.lru_cache(maxsize=1024)
def _derived_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def canonical_request(
    method: str,
    path: str,
    canonical_query_string: str,
    canonical_headers: str,
    signed_headers: str,
    payload_hash: str,
) -> str:
    """The SigV4 canonical request; ``canonical_headers`` ends with its own newline."""
    uri = quote(_remove_dot_segments(path) or "/", safe="/~")
    return "\n".join(
        [
            method.upper(),
            uri,
            canonical_query_string,
            canonical_headers,
            signed_headers,
            payload_hash,
        ]
    )


def canonical_query(pairs: Sequence[tuple[bytes, bytes]]) -> str:
    """Percent-encode decoded pairs RFC 3986 style and sort them by (key, value)."""
    encoded = sorted((quote(k, safe=""), quote(v, safe="")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def presign_url(
    method: str,
    url: str,
    access_key_id: str,
    secret: str,
    region: str,
    *,
    now: datetime,
    expires: int = DEFAULT_EXPIRES,
    service: str = "kvs",
    body: bytes = b"",
    session_token: str | None = None,
) -> str:
    """Return ``url`` signed in query form (``X-Amz-*`` parameters), valid ``expires`` s.

    Only ``host`` is signed: it is the URL's netloc, so do not write a default port
    (``:80``/``:443``) that the HTTP client would drop from the Host header. The payload
    hash is that of ``body`` (empty for GET). Existing query parameters are kept.
    """
    if not 0 < expires <= MAX_EXPIRES:
        raise ValueError(f"expires must be in 1..{MAX_EXPIRES}, got {expires}")
    parts = urlsplit(url)
    if not parts.netloc:
        raise ValueError(f"url needs a host: {url!r}")
    amz_date = _require_aware(now).strftime(AMZ_DATE_FORMAT)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    params = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key_id}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    if session_token is not None:
        params.append(("X-Amz-Security-Token", session_token))
    added = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
    query = f"{parts.query}&{added}" if parts.query else added
    path = parts.path or "/"
    head = canonical_request(
        method,
        path,
        canonical_query(_parse_query(query)),
        f"host:{parts.netloc}\n",
        "host",
        hashlib.sha256(body).hexdigest(),
    )
    key = signing_key(secret, amz_date[:8], region, service)
    signature = hmac.new(key, _string_to_sign(amz_date, scope, head), hashlib.sha256)
    query += f"&X-Amz-Signature={signature.hexdigest()}"
    return urlunsplit((parts.scheme, parts.netloc, path, query, parts.fragment))


def claimed_access_key(raw_query: str, headers: Mapping[str, str]) -> str:
    """The access key id a request claims to be signed with, read without its body.

    Nothing is verified: this lets a server refuse an anonymous or malformed request
    before it reads a body. The carrier checks are :func:`verify`'s, in its order:
    :class:`MissingAuthenticationToken` (no signature at all), :class:`IncompleteSignature`
    (both carriers, several ``Authorization`` headers, a malformed claim or scope).
    """
    claim, _ = _carried_claim(_parse_query(raw_query), headers)
    return claim.access_key_id


# --- carriers ---------------------------------------------------------------------------


def _carried_claim(pairs: QueryPairs, headers: Mapping[str, str]) -> tuple[_Claim, bool]:
    """The claim of the one carrier the request uses, and whether it is the query.
    Both carriers, or several ``Authorization`` headers → IncompleteSignature; neither →
    MissingAuthenticationToken."""
    authorization = [v for v in _header_values(headers, "authorization") if v.strip()]
    query_signed = any(key in _QUERY_AUTH_KEYS for key, _ in pairs)
    if authorization and query_signed:
        raise IncompleteSignature("Only one auth mechanism allowed; got header and query.")
    if len(authorization) > 1:
        raise IncompleteSignature("Only one Authorization header allowed.")
    if authorization:
        return _claim_from_header(authorization[0], headers), False
    if query_signed:
        return _claim_from_query(pairs), True
    raise MissingAuthenticationToken()


def _claim_from_header(authorization: str, headers: Mapping[str, str]) -> _Claim:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(f"Unsupported signature algorithm; expected {ALGORITHM}.")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, value = item.strip().partition("=")
        if not eq or name not in _HEADER_AUTH_FIELDS or name in fields:
            raise IncompleteSignature(f"Malformed Authorization header element {item.strip()!r}.")
        fields[name] = value.strip()
    missing = sorted(_HEADER_AUTH_FIELDS - fields.keys())
    if missing:
        raise IncompleteSignature(f"Authorization header requires a '{missing[0]}' parameter.")
    amz_date, date = _header_timestamp(headers)
    credential, signed_headers = fields["Credential"], fields["SignedHeaders"]
    return _claim(credential, signed_headers, fields["Signature"], amz_date, date, None)


def _claim_from_query(pairs: QueryPairs) -> _Claim:
    def one(name: str, default: str | None = None) -> str:
        values = [v for k, v in pairs if k == name.encode()]
        if len(values) > 1:
            raise IncompleteSignature(f"Query parameter {name} is repeated.")
        if not values:
            if default is None:
                raise IncompleteSignature(f"Query-string authentication requires {name}.")
            return default
        try:
            return values[0].decode("utf-8")
        except UnicodeDecodeError:
            raise IncompleteSignature(f"{name} is not UTF-8.") from None

    if one("X-Amz-Algorithm") != ALGORITHM:
        raise IncompleteSignature(f"X-Amz-Algorithm only supports {ALGORITHM}.")
    raw_expires = one("X-Amz-Expires", str(DEFAULT_EXPIRES))
    # ASCII digits only ("²".isdigit() is true), and few: int() refuses 4300 digits.
    digits = raw_expires.isascii() and raw_expires.isdigit() and len(raw_expires) <= 10
    if not digits or not 0 < int(raw_expires) <= MAX_EXPIRES:
        raise IncompleteSignature(f"X-Amz-Expires must be an integer in 1..{MAX_EXPIRES}.")
    amz_date = one("X-Amz-Date")
    credential, signed_headers = one("X-Amz-Credential"), one("X-Amz-SignedHeaders")
    date = _parse_amz_date(amz_date)
    return _claim(
        credential, signed_headers, one("X-Amz-Signature"), amz_date, date, int(raw_expires)
    )


def _claim(
    credential: str,
    signed_headers: str,
    signature: str,
    amz_date: str,
    date: datetime,
    expires: int | None,
) -> _Claim:
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or not all(parts) or parts[4] != "aws4_request":
        raise IncompleteSignature(
            "Credential must have the form <AccessKeyId>/<yyyymmdd>/<region>/<service>"
            f"/aws4_request; got {credential!r}."
        )
    access_key_id, scope_date, region, scope_service, _ = parts
    names = signed_headers.split(";")
    if not all(names) or any(n != n.strip() for n in names):
        raise IncompleteSignature(f"Malformed SignedHeaders {signed_headers!r}.")
    if "host" not in (n.lower() for n in names):
        raise IncompleteSignature("SignedHeaders must include 'host'.")
    if not _HEX64_RE.fullmatch(signature):
        raise IncompleteSignature("Signature must be 64 hexadecimal digits.")
    return _Claim(
        access_key_id=access_key_id,
        scope_date=scope_date,
        region=region,
        service=scope_service,
        signed_headers=signed_headers,
        signature=signature.lower(),
        amz_date=amz_date,
        date=date,
        expires=expires,
    )


# --- checks -----------------------------------------------------------------------------


def _check_scope(claim: _Claim, service: str) -> None:
    if claim.service != service:
        raise IncompleteSignature(
            f"Credential should be scoped to the correct service: '{service}'."
        )
    if claim.scope_date != claim.amz_date[:8]:
        raise IncompleteSignature(
            f"Date in Credential scope ({claim.scope_date}) does not match the request date "
            f"({claim.amz_date[:8]})."
        )


def _check_time(claim: _Claim, now: datetime, max_skew_seconds: int) -> None:
    skew = timedelta(seconds=max_skew_seconds)
    if claim.expires is None:
        if abs(now - claim.date) > skew:
            raise RequestExpired(
                f"Request timestamp {claim.amz_date} is more than {max_skew_seconds} s "
                f"away from the server time {now.strftime(AMZ_DATE_FORMAT)}."
            )
        return
    if claim.date - now > skew:
        raise RequestExpired(f"Request timestamp {claim.amz_date} is in the future.")
    if now > claim.date + timedelta(seconds=claim.expires):
        raise RequestExpired(
            f"Request has expired: signed at {claim.amz_date}, valid {claim.expires} s."
        )


def _declared_payload_hash(pairs: QueryPairs, headers: Mapping[str, str]) -> str | None:
    for key, value in pairs:  # query form only
        if key.lower() == b"x-amz-content-sha256":
            return value.decode("utf-8", "replace")
    values = _header_values(headers, "x-amz-content-sha256")
    return values[0].strip() if values else None


def _payload_hash(declared: str | None, body: bytes) -> str:
    actual = hashlib.sha256(body).hexdigest()
    if declared is None:
        return actual
    if declared == UNSIGNED_PAYLOAD:
        if body:
            raise IncompleteSignature("UNSIGNED-PAYLOAD is not accepted with a request body.")
        return declared
    if not _HEX64_RE.fullmatch(declared):
        raise IncompleteSignature(f"Unsupported X-Amz-Content-Sha256 value {declared!r}.")
    if declared.lower() != actual:
        raise SignatureDoesNotMatch("X-Amz-Content-Sha256 does not match the request body.")
    return declared


def _matches(key: bytes, claim: _Claim, head: str) -> bool:
    scope = f"{claim.scope_date}/{claim.region}/{claim.service}/aws4_request"
    expected = hmac.new(key, _string_to_sign(claim.amz_date, scope, head), hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), claim.signature)


# --- canonical pieces -------------------------------------------------------------------


def _string_to_sign(amz_date: str, scope: str, head: str) -> bytes:
    digest = hashlib.sha256(head.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}".encode()


def _canonical_headers(headers: Mapping[str, str], signed_headers: str) -> str:
    lines = []
    for name in signed_headers.split(";"):
        values = _header_values(headers, name.lower())
        if not values:
            raise SignatureDoesNotMatch(f"Signed header '{name}' is not in the request.")
        joined = ",".join(_SPACES_RE.sub(" ", v.strip()) for v in values)
        lines.append(f"{name.lower()}:{joined}\n")
    return "".join(lines)


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    getlist = getattr(headers, "getlist", None)
    if callable(getlist):
        return [str(v) for v in getlist(name)]
    value = headers.get(name)
    return [] if value is None else [value]


def _parse_query(raw_query: str) -> QueryPairs:
    pairs = []
    for item in raw_query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((_form_unquote(key), _form_unquote(value)))
    return pairs


def _form_unquote(text: str) -> bytes:
    return unquote_to_bytes(text.replace("+", " "))


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 §5.2.4 plus removal of empty segments, exactly as kscore normalises.
    if not path:
        return ""
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last


# --- time -------------------------------------------------------------------------------


def _header_timestamp(headers: Mapping[str, str]) -> tuple[str, datetime]:
    amz = _header_values(headers, "x-amz-date")
    if amz:
        value = amz[0].strip()
        return value, _parse_amz_date(value)
    http_date = _header_values(headers, "date")
    if not http_date:
        raise IncompleteSignature("Authorization requires an 'X-Amz-Date' or 'Date' header.")
    try:
        date = _aware_utc(parsedate_to_datetime(http_date[0]))
    except (TypeError, ValueError, IndexError):
        raise IncompleteSignature(f"Malformed Date header {http_date[0]!r}.") from None
    return date.strftime(AMZ_DATE_FORMAT), date


def _parse_amz_date(value: str) -> datetime:
    try:
        if not _AMZ_DATE_RE.fullmatch(value):
            raise ValueError(value)
        # What strptime(value, AMZ_DATE_FORMAT) gives for this shape, at a tenth of its
        # cost; datetime() refuses the same out-of-range fields (month 13, second 60, ...).
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[9:11]),
            int(value[11:13]),
            int(value[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        raise IncompleteSignature(
            f"X-Amz-Date must be yyyymmddTHHMMSSZ in UTC; got {value!r}."
        ) from None


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        # parsedate_to_datetime gives naive for "-0000", which RFC 5322 defines as UTC.
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()
