"""What every console handler gets: the services, who is signed in, and the request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from openkvs.api.keycache import KeyCache
from openkvs.console.session import Session, SessionSigner
from openkvs.model import User
from openkvs.service.context import Services


@dataclass(frozen=True)
class Console:
    services: Services
    signer: SessionSigner
    keys: KeyCache


@dataclass(frozen=True)
class Viewer:
    """The signed-in user. ``admin``: sees every user's data (``openkvs keys admin``)."""

    user: User
    admin: bool
    session: Session
    csrf: str


@dataclass(frozen=True)
class Req:
    """A request as handlers read it (the form already parsed, bounded in size)."""

    path: Mapping[str, str]
    query: Mapping[str, str]
    form: Mapping[str, str]


class Refused(Exception):
    """An answer other than the page: HTTP status and a short message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def subject(console: Console, viewer: Viewer, req: Req) -> User:
    """Whose presets, pipelines or buckets a page shows: the viewer's own, or for an admin
    the user named by ``?user=`` (404 for an unknown one)."""
    name = req.query.get("user", "")
    if not viewer.admin or not name or name == viewer.user.name:
        return viewer.user
    found = console.services.users.find_user(name)
    if found is None:
        raise Refused(404, f"no user {name}")
    return found
