"""The HTTP API: one Starlette app, every action on ``/``.

A request goes: path check → SigV4 (the access key names the user) → action and version →
parameters → the action's service function, in a worker thread (the stores block) →
envelope. Route code raises; ``responses.from_exception`` turns errors into answers.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openkvs.api import responses, sigv4
from openkvs.api.actions import ACTIONS
from openkvs.api.routing import action_params, query_params, resolve_action
from openkvs.errors import InvalidAction, InvalidClientTokenId, SignatureDoesNotMatch
from openkvs.model import User
from openkvs.service.context import Services

log = logging.getLogger(__name__)


def create_app(services: Services) -> Starlette:
    def authenticate(method: str, raw_query: str, headers: Headers, body: bytes) -> User:
        found: dict[str, User] = {}

        def secret_for(access_key_id: str) -> str | None:
            entry = services.users.lookup_key(access_key_id)
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
        return found["user"]

    def handle(method: str, raw_query: str, headers: Headers, body: bytes) -> dict:
        user = authenticate(method, raw_query, headers, body)
        query = query_params(raw_query)
        action = resolve_action(query, headers, ACTIONS)
        services.counter.count(user.id, action, services.clock())
        params = action_params(method, query, body)
        result = ACTIONS[action](services, user, params)
        log.info("api_call", extra={"action": action, "user": user.name})
        return result

    async def root(request: Request) -> Response:
        request_id = responses.new_request_id()
        try:
            body = await request.body()
            raw_query = request.scope.get("query_string", b"").decode("latin-1")
            result = await run_in_threadpool(
                handle, request.method, raw_query, request.headers, body
            )
        except Exception as exc:
            return responses.from_exception(exc, request_id)
        return responses.success(result, request_id)

    async def elsewhere(request: Request) -> Response:
        exc = InvalidAction(f"No actions are served on {request.url.path}; use /.")
        return responses.from_exception(exc, responses.new_request_id())

    return Starlette(
        routes=[
            Route("/", root, methods=["GET", "POST"]),
            Route("/{path:path}", elsewhere, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
        ]
    )
