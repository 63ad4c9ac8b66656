"""Which action a request names, and its parameters (spec §1.2, §1.3).

Parameters travel in the query (any method) and in a POST body: a JSON object, or an
``application/x-www-form-urlencoded`` form (Kingsoft's current SDK). Dotted query keys and
form fields (``SrcInfo.0.path``) are rebuilt into objects and arrays by
:mod:`openkvs.api.params_shape`.

The action comes from ``?Action=``, then a form body's ``Action``, then ``X-Action``, then
``X-Amz-Target: kvs.<Action>``; the version from ``?Version=``, a form body's ``Version``,
then ``X-Version``. Whatever chose them must be covered by the signature: the query is (the
canonical query) and so is the body (the payload hash), but a header only when it is one of
the SignedHeaders; an unsigned one is refused with :class:`IncompleteSignature`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import parse_qsl

from openkvs.api.params_shape import unflatten
from openkvs.errors import ApiError, IncompleteSignature, InvalidAction, InvalidVersion
from openkvs.service import json_input

API_VERSION = "2017-01-01"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
#: The most fields a form body may have.
MAX_FORM_FIELDS = 10_000

#: Fields that carry the action, the version or SDK bookkeeping (``kingsoftcloud-sdk-python``
#: adds ``Service``, ``Region``, ``SdkVersion``, ``Accesskey`` and ``Language`` to every call),
#: never action parameters, wherever they travel. ``X-Amz-*`` query keys are the signature's.
TRANSPORT = frozenset(
    {"Action", "Version", "Service", "Region", "SdkVersion", "Accesskey", "Language"}
)


#: Where :func:`action_params` keeps a whole JSON body (``whole_body``); dropped from the
#: query and form, so a client cannot set it any other way.
WHOLE_BODY = "#body"


def query_params(raw_query: str) -> dict[str, str]:
    """The query as a dict (the first value of a repeated key wins); blanks kept."""
    out: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        out.setdefault(key, value)
    return out


def form_params(method: str, content_type: str, body: bytes) -> dict[str, str] | None:
    """A POST's form body as a dict (the first value of a repeated key wins, blanks kept),
    or ``None`` when the body is not a form. 1001 when it is not UTF-8 or has more than
    :data:`MAX_FORM_FIELDS` fields."""
    media_type = content_type.partition(";")[0].strip().lower()
    if method != "POST" or media_type != FORM_CONTENT_TYPE:
        return None
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError as exc:
        raise ApiError(1001, "the form body is not valid UTF-8") from exc
    except ValueError as exc:
        raise ApiError(1001, f"the form body has more than {MAX_FORM_FIELDS} fields") from exc
    out: dict[str, str] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def _signed_header(headers: Mapping[str, str], name: str, signed_headers: Collection[str]) -> str:
    """A header's value when it is given; refused when it is given but not signed."""
    value = headers.get(name.lower()) or ""
    if value and name.lower() not in signed_headers:
        raise IncompleteSignature(
            f"The {name} header chooses the action or version, so it must be one of the "
            "SignedHeaders."
        )
    return value


def resolve_action(
    query: Mapping[str, str],
    headers: Mapping[str, str],
    known: Mapping[str, object],
    *,
    signed_headers: Collection[str],
    form: Mapping[str, str] | None = None,
) -> str:
    """The action: ``?Action=``, else the form body's ``Action``, else ``X-Action``, else
    ``X-Amz-Target: kvs.<Action>``. A header that decides the action or the version must be
    in ``signed_headers`` (lower-case names), else IncompleteSignature; unknown action →
    InvalidAction; a ``Version`` other than 2017-01-01 → InvalidVersion."""
    fields = form or {}
    action = query.get("Action") or fields.get("Action") or ""
    if not action:
        action = _signed_header(headers, "X-Action", signed_headers)
    if not action:
        target = _signed_header(headers, "X-Amz-Target", signed_headers)
        service, _, name = target.partition(".")
        if service == "kvs":
            action = name
    version = query.get("Version") or fields.get("Version") or ""
    if not version:
        version = _signed_header(headers, "X-Version", signed_headers) or API_VERSION
    if not action:
        raise InvalidAction("No action given: use ?Action=, X-Action or X-Amz-Target.")
    if action not in known:
        raise InvalidAction(f"The action {action} is not valid for this web service.")
    if version != API_VERSION:
        raise InvalidVersion(f"Version {version} is not supported; use {API_VERSION}.")
    return action


def _is_parameter(key: str) -> bool:
    return key not in TRANSPORT and not key.startswith("X-Amz-")


def action_params(
    method: str,
    query: Mapping[str, str],
    body: bytes,
    form: Mapping[str, str] | None = None,
    *,
    whole_body: bool = False,
) -> dict[str, Any]:
    """Query parameters, with the POST body's merged on top (the body wins, per top-level
    name): the ``form`` fields when the body is a form (see :func:`form_params`), else the
    JSON object of ``body``. Dotted query keys and form fields are rebuilt into objects and
    arrays; transport fields (:data:`TRANSPORT`) are dropped everywhere.

    With ``whole_body`` (an action whose body is not an object, such as BatchCreateTask's
    JSON array), a POST's JSON body of any type is not merged but kept whole under
    :data:`WHOLE_BODY`, a name that only this can set."""
    params = unflatten((k, v) for k, v in query.items() if _is_parameter(k))
    if form is not None:
        params.update(unflatten((k, v) for k, v in form.items() if _is_parameter(k)))
    params.pop(WHOLE_BODY, None)
    if form is None and method == "POST" and body.strip():
        if whole_body:  # depth, numbers: 1001
            params[WHOLE_BODY] = json_input.parse(body, "the request body")
        else:
            parsed = json_input.parse_object(body, "the request body")  # depth, numbers: 1001
            params.update((k, v) for k, v in parsed.items() if k not in TRANSPORT)
    return params
