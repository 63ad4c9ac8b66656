"""The console's routes under ``/console`` (mounted by ``api/app.py`` before its catch-all).

Every page and data endpoint needs a valid session cookie (``session.py``): without one a
page answers ``303`` to the sign-in form and a data endpoint ``401``. Every POST and PUT
needs the session's CSRF token (``403`` otherwise). Handlers run in a worker thread (the
stores block); they raise :class:`~openkvs.console.context.Refused` for anything but the
page, and it is answered as a small page (or JSON for ``/console/api``).
"""

from __future__ import annotations

import hmac
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from openkvs.api.keycache import KeyCache
from openkvs.config import Settings
from openkvs.console import buckets_view, fleet_view, playlists, presets_view, tasks_view
from openkvs.console import html as h
from openkvs.console.context import Console, Refused, Req, Viewer
from openkvs.console.session import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    CSRF_PURPOSE,
    SESSION_PURPOSE,
    SESSION_SECONDS,
    SIGNIN_COOKIE,
    SIGNIN_SECONDS,
    SessionSigner,
    cookie_header,
    new_signin_token,
    signin_token_ok,
)
from openkvs.service.context import Services

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
#: The largest form body read (uploads are not forms: see ``upload``).
MAX_FORM_BYTES = 1024 * 1024

Page = Callable[[Console, Viewer, Req], Any]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def _html(text: str, status: int = 200, headers: dict[str, str] = h.SECURITY_HEADERS) -> Response:
    return Response(text, status, headers=headers, media_type="text/html")


def media_origins(settings: Settings) -> tuple[str, ...]:
    """Origins ``/objects`` redirects to (S3 storage), which players must be allowed."""
    if settings.storage != "s3":
        return ()
    base = settings.s3_public_endpoint_url or settings.s3_endpoint_url
    if not base:
        return ("https://*.amazonaws.com",)
    parts = urlsplit(base)
    return (f"{parts.scheme}://{parts.netloc}",)


def _refusal(exc: Refused, api: bool) -> Response:
    if api:
        return JSONResponse({"Error": exc.message}, exc.status, headers=h.SECURITY_HEADERS)
    return _html(h.page(f"{exc.status}", h.error_box(exc.message)), exc.status)


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, "the form is too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def console_routes(services: Services) -> list[BaseRoute]:
    signer = SessionSigner(
        services.sealer.derive(SESSION_PURPOSE), services.sealer.derive(CSRF_PURPOSE)
    )
    keys = KeyCache(services.users.lookup_key, services.settings.key_cache_seconds)
    console = Console(services, signer, keys)
    page_headers = h.security_headers(media_origins(services.settings))

    def viewer_of(request: Request) -> Viewer | None:
        session = signer.read(request.cookies.get(COOKIE), services.clock())
        if session is None:
            return None
        found = keys.get(session.access_key_id)
        if found is None or found[1].id != session.user_id:
            return None  # the key was revoked (or the cookie outlived its user)
        user = found[1]
        return Viewer(user, services.users.is_admin(user.id), session, signer.csrf_token(session))

    def guarded(
        handler: Page, *, write: bool = False, api: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """A route: session check, CSRF check for writes, the handler in a thread; a
        handler's ``str`` answer is a redirect target, ``(title, body)`` a page, a ``dict``
        JSON."""

        async def endpoint(request: Request) -> Response:
            try:
                viewer = await run_in_threadpool(viewer_of, request)
                if viewer is None:
                    if api or write:
                        raise Refused(401, "sign in first")
                    return RedirectResponse("/console/signin", 303, headers=h.SECURITY_HEADERS)
                form = await _form(request) if write else {}
                if write and not signer.csrf_ok(
                    viewer.session, form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
                ):
                    raise Refused(403, "missing or invalid CSRF token")
                req = Req(dict(request.path_params), dict(request.query_params), form)
                result = await run_in_threadpool(handler, console, viewer, req)
            except Refused as exc:
                return _refusal(exc, api)
            if isinstance(result, Response):
                return result
            if isinstance(result, str):
                return RedirectResponse(result, 303, headers=h.SECURITY_HEADERS)
            if isinstance(result, dict):
                return JSONResponse(result, headers=h.SECURITY_HEADERS)
            title, body = result
            section = request.url.path.split("/")[2] if request.url.path.count("/") >= 2 else ""
            page = h.page(
                title,
                body,
                user=viewer.user.name,
                admin=viewer.admin,
                csrf=viewer.csrf,
                current=section,
            )
            return _html(page, 400 if write else 200, page_headers)

        return endpoint

    async def signin_form(request: Request, message: str = "", status: int = 200) -> Response:
        token = new_signin_token()
        body = (
            h.error_box(message) + '<form method="post" action="/console/signin" class="stack">'
            f'<input type="hidden" name="signin" value="{h.esc(token)}">'
            '<label>AccessKeyId <input name="AccessKeyId" autocomplete="username"></label>'
            '<label>SecretAccessKey <input name="SecretAccessKey" type="password" '
            'autocomplete="current-password"></label><button type="submit">Sign in</button></form>'
        )
        response = _html(h.page("Sign in", body), status)
        response.headers["Set-Cookie"] = cookie_header(
            SIGNIN_COOKIE, token, SIGNIN_SECONDS, secure=_secure(request)
        )
        return response

    async def signin(request: Request) -> Response:
        if request.method == "GET":
            return await signin_form(request)
        try:
            form = await _form(request)
        except Refused as exc:
            return _refusal(exc, False)
        if not signin_token_ok(request.cookies.get(SIGNIN_COOKIE), form.get("signin")):
            return _refusal(Refused(403, "the sign-in form expired; load it again"), False)
        key_id = form.get("AccessKeyId", "").strip()
        secret = form.get("SecretAccessKey", "")
        known = 0 < len(key_id) <= 128
        found = await run_in_threadpool(keys.get, key_id) if known else None
        if found is None or not _same(found[0], secret):
            log.info("console_signin_refused", extra={"access_key_id": key_id[:64]})
            return await signin_form(request, "Unknown access key or wrong secret.", 403)
        cookie, _ = signer.issue(key_id, found[1].id, services.clock())
        log.info("console_signin", extra={"user": found[1].name, "access_key_id": key_id})
        response = RedirectResponse("/console/tasks", 303, headers=h.SECURITY_HEADERS)
        secure = _secure(request)
        response.headers.append(
            "Set-Cookie", cookie_header(COOKIE, cookie, SESSION_SECONDS, secure=secure)
        )
        response.headers.append("Set-Cookie", cookie_header(SIGNIN_COOKIE, "", 0, secure=secure))
        return response

    def signout(_console: Console, _viewer: Viewer, _req: Req) -> str:
        return "/console/signin"

    async def signout_endpoint(request: Request) -> Response:
        response = await guarded(signout, write=True)(request)
        if response.status_code == 303:
            response.headers.append(
                "Set-Cookie", cookie_header(COOKIE, "", 0, secure=_secure(request))
            )
        return response

    async def home(request: Request) -> Response:
        return RedirectResponse("/console/tasks", 303, headers=h.SECURITY_HEADERS)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        path = (STATIC / name).resolve()
        if not path.is_relative_to(STATIC.resolve()) or not path.is_file():
            return Response("not found", 404, headers=h.SECURITY_HEADERS)
        return FileResponse(
            path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        )

    async def upload(request: Request) -> Response:
        """``PUT /console/api/buckets/<bucket>/objects?key=<key>``: the raw file as the
        body (the page sends it with XMLHttpRequest to show progress)."""
        try:
            viewer = await run_in_threadpool(viewer_of, request)
            if viewer is None:
                raise Refused(401, "sign in first")
            if not signer.csrf_ok(viewer.session, request.headers.get(CSRF_HEADER)):
                raise Refused(403, "missing or invalid CSRF token")
            bucket = request.path_params["bucket"]
            key = await run_in_threadpool(
                buckets_view.check_upload,
                console,
                viewer,
                bucket,
                request.query_params.get("key", ""),
            )
            fd, name = tempfile.mkstemp(prefix="console-upload-")
            try:
                size = 0
                with os.fdopen(fd, "wb") as out:
                    async for chunk in request.stream():
                        size += len(chunk)
                        if size > buckets_view.MAX_UPLOAD_BYTES:
                            raise Refused(413, "the file is larger than the console accepts")
                        await run_in_threadpool(out.write, chunk)
                await run_in_threadpool(buckets_view.store_upload, console, bucket, key, Path(name))
            finally:
                os.unlink(name)
        except Refused as exc:
            return _refusal(exc, True)
        log.info(
            "console_upload",
            extra={"user": viewer.user.name, "bucket": bucket, "key": key, "bytes": size},
        )
        return JSONResponse(
            {"Bucket": bucket, "Key": key, "Size": size}, headers=h.SECURITY_HEADERS
        )

    return [
        Route("/console", home),
        Route("/console/", home),
        Route("/console/signin", signin, methods=["GET", "POST"]),
        Route("/console/signout", signout_endpoint, methods=["POST"]),
        Route("/console/static/{name:path}", static),
        Route("/console/tasks", guarded(tasks_view.tasks_page)),
        Route("/console/tasks/{task_id}", guarded(tasks_view.task_page)),
        Route("/console/api/tasks", guarded(tasks_view.tasks_data, api=True)),
        Route("/console/api/tasks/{task_id}", guarded(tasks_view.task_data, api=True)),
        Route("/console/api/tasks/{task_id}/hls", guarded(playlists.playlist, api=True)),
        Route("/console/presets", guarded(presets_view.presets_page)),
        # "-new": no preset is named so (names are A-Z a-z 0-9 _), so a preset named "new"
        # keeps its own page.
        Route("/console/presets/-new", guarded(presets_view.new_preset_page)),
        Route(
            "/console/presets/-new", guarded(presets_view.save_preset, write=True), methods=["POST"]
        ),
        Route("/console/presets/{name}", guarded(presets_view.preset_page)),
        Route("/console/presets/{name}/edit", guarded(presets_view.edit_preset_page)),
        Route(
            "/console/presets/{name}/edit",
            guarded(presets_view.save_preset, write=True),
            methods=["POST"],
        ),
        Route("/console/pipelines", guarded(fleet_view.pipelines_page)),
        Route(
            "/console/pipelines/{name}",
            guarded(fleet_view.set_pipeline_state, write=True),
            methods=["POST"],
        ),
        Route("/console/workers", guarded(fleet_view.workers_page)),
        Route("/console/buckets", guarded(buckets_view.buckets_page)),
        Route("/console/buckets/{bucket}", guarded(buckets_view.bucket_page)),
        Route("/console/buckets/{bucket}/submit", guarded(buckets_view.submit_page)),
        Route(
            "/console/buckets/{bucket}/submit",
            guarded(buckets_view.submit_task, write=True),
            methods=["POST"],
        ),
        Route("/console/api/buckets/{bucket}/objects", upload, methods=["PUT"]),
    ]


def _same(stored: str, given: str) -> bool:
    return hmac.compare_digest(stored.encode("utf-8"), given.encode("utf-8"))
