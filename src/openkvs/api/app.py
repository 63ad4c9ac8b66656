"""The HTTP API: one Starlette app, every action on ``/``.

A request goes: path check → SigV4 (the access key names the user) → action and version →
parameters → the action's service function, in a worker thread (the stores block; see
``INLINE_ACTIONS`` for the few that run on the event loop) → envelope. Route code raises;
``responses.from_exception`` turns errors into answers (a database outage into 503
``ServiceUnavailable`` with ``Retry-After``, authentication's key lookup included).
"""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openkvs.api import responses, sigv4
from openkvs.api.actions import ACTIONS, WHOLE_BODY_ACTIONS
from openkvs.api.body import answer_closes, declares_body, read_body
from openkvs.api.keycache import KeyCache
from openkvs.api.objects import object_routes
from openkvs.api.ops import ops_routes
from openkvs.api.requestlog import RequestFacts, RequestLog, facts_of
from openkvs.api.routing import action_params, form_params, query_params, resolve_action
from openkvs.console.routes import console_routes
from openkvs.errors import InvalidAction, InvalidClientTokenId, SignatureDoesNotMatch
from openkvs.model import User
from openkvs.service.context import Services

log = logging.getLogger(__name__)


#: Actions that read one row by its key. On SQLite such a read takes a fraction of a
#: millisecond and never waits (WAL readers do not wait for writers), less than handing it
#: to a worker thread costs, so these run on the event loop. Everything else, and every
#: action on PostgreSQL (a network round trip, a pool that can be exhausted), runs in a
#: thread.
INLINE_ACTIONS = frozenset({"GetTaskByTaskID", "GetPresetDetail"})

_QUERY_ACTION = re.compile(r"(?:^|&)Action=([A-Za-z]+)(?:&|$)")


def _action_hint(raw_query: str, headers: Headers) -> str:
    """The action a request seems to name, read cheaply and not verified: it only chooses
    where the request runs (``handle`` resolves and checks the action itself)."""
    found = _QUERY_ACTION.search(raw_query)
    return found.group(1) if found else headers.get("x-action", "")


def create_app(services: Services) -> Starlette:
    keys = KeyCache(services.users.lookup_key, services.settings.key_cache_seconds)
    sqlite = services.settings.sqlalchemy_url.startswith("sqlite")
    inline = INLINE_ACTIONS if sqlite else frozenset()
    # Few request threads (OPENKVS_API_THREADS): with dozens of runnable threads, the one
    # that holds the database's write lock waits its turn for the interpreter lock after
    # every statement, and every other writer waits behind it.
    threads = ThreadPoolExecutor(services.settings.api_threads, thread_name_prefix="api")

    def authenticate(
        method: str, raw_query: str, headers: Headers, body: bytes
    ) -> tuple[User, sigv4.SignedIdentity]:
        """The signer's user, and what the signature covers."""
        found: dict[str, User] = {}

        def secret_for(access_key_id: str) -> str | None:
            entry = keys.get(access_key_id)
            if entry is None:
                return None
            found["user"] = entry[1]
            return entry[0]

        identity = sigv4.verify(
            method,
            raw_query,
            headers,
            body,
            secret_for,
            now=datetime.now(UTC),
            service="kvs",
            max_skew_seconds=services.settings.max_skew_seconds,
        )
        if identity.region != services.settings.region:
            raise SignatureDoesNotMatch(
                f"Credential should be scoped to a valid region, not "
                f"'{identity.region}'; this service is '{services.settings.region}'."
            )
        if "user" not in found:  # pragma: no cover - verify() calls secret_for first
            raise InvalidClientTokenId()
        return found["user"], identity

    def handle(
        method: str, raw_query: str, headers: Headers, body: bytes, facts: RequestFacts
    ) -> dict:
        user, identity = authenticate(method, raw_query, headers, body)
        facts.user = user.name
        query = query_params(raw_query)
        form = form_params(method, headers.get("content-type", ""), body)
        action = resolve_action(
            query, headers, ACTIONS, form=form, signed_headers=identity.signed_headers
        )
        facts.action = action
        services.counter.count(user.id, action, services.clock())
        params = action_params(method, query, body, form, whole_body=action in WHOLE_BODY_ACTIONS)
        return ACTIONS[action](services, user, params)

    async def root(request: Request) -> Response:
        facts = facts_of(request.scope)
        try:
            body = await read_body(request, services.settings.max_body_bytes, keys.get)
            raw_query = request.scope.get("query_string", b"").decode("latin-1")
            if _action_hint(raw_query, request.headers) in inline:
                result = handle(request.method, raw_query, request.headers, body, facts)
            else:
                result = await asyncio.get_running_loop().run_in_executor(
                    threads, handle, request.method, raw_query, request.headers, body, facts
                )
        except Exception as exc:
            answered = responses.answerable(exc)  # a database outage: 503, Retry-After
            facts.answered(answered)
            response = responses.from_exception(answered, facts.request_id)
            if answer_closes(request):
                response.headers["Connection"] = "close"
            return response
        responses.DATABASE.ok()  # logs once that the database is back after an outage
        facts.answered(None)
        return responses.success(result, facts.request_id)

    async def elsewhere(request: Request) -> Response:
        facts = facts_of(request.scope)
        exc = InvalidAction(f"No actions are served on {request.url.path}; use /.")
        facts.answered(exc)
        response = responses.from_exception(exc, facts.request_id)
        if declares_body(request):  # not read: close rather than read it to discard it
            response.headers["Connection"] = "close"
        return response

    return Starlette(
        routes=[
            Route("/", root, methods=["GET", "POST"]),
            *object_routes(services),  # GET/HEAD /objects/<bucket>/<key>, see api/objects.py
            *ops_routes(services),  # /healthz, /readyz, /metrics: see api/ops.py
            *console_routes(services),  # the web console under /console: see console/
            Route("/{path:path}", elsewhere, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
        ],
        middleware=[Middleware(RequestLog)],  # one api_request line per request
    )
