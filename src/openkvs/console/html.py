"""Building the console's pages: every value goes through :func:`esc` (or ``attrs``).

Pages are server-rendered strings; no script is inline (the Content-Security-Policy allows
only ``/console/static``), and data for scripts travels in ``data-*`` attributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from urllib.parse import quote

NAV = (
    ("tasks", "Tasks"),
    ("presets", "Presets"),
    ("pipelines", "Pipelines"),
    ("workers", "Workers"),
    ("buckets", "Buckets"),
)

#: hls.js, when ``scripts/install.sh`` could fetch it (the console works without it).
HLS_JS = Path(__file__).parent / "static" / "vendor" / "hls.min.js"


def security_headers(media_origins: Sequence[str] = ()) -> dict[str, str]:
    """The headers of every console answer. ``media_origins``: where ``/objects`` may
    redirect players and images to (an S3 store's endpoint), besides the console's own."""
    media = " ".join(("'self'", *media_origins))
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src {media} data: blob:; media-src {media} blob:; connect-src {media}; "
            "worker-src 'self' blob:; object-src 'none'; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'self'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
    }


#: The headers for a console with local storage.
SECURITY_HEADERS = security_headers()


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def url(*parts: str, **query: str) -> str:
    """A console URL: each part percent-encoded (``/`` too), then the query."""
    path = "/console/" + "/".join(quote(p, safe="") for p in parts)
    given = {k: v for k, v in query.items() if v}
    if given:
        path += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in given.items())
    return path


def when(seconds: float | None) -> str:
    if not seconds:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, attrs: str = "") -> str:
    """A table; ``rows`` hold HTML already escaped (cells built with :func:`esc`)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table {attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def link(href: str, text: object) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(token)}">'


def text_input(label: str, name: str, value: str = "", extra: str = "") -> str:
    """A labelled text input."""
    return f'<label>{esc(label)} <input name="{esc(name)}" value="{esc(value)}"{extra}></label>'


def error_box(message: str) -> str:
    return f'<p class="error" role="alert">{esc(message)}</p>' if message else ""


def page(
    title: str, body: str, *, user: str = "", admin: bool = False, csrf: str = "", current: str = ""
) -> str:
    """A whole page. ``csrf``: the session's token, given to scripts in ``<body>``."""
    nav = ""
    if user:
        items = "".join(
            f'<a href="/console/{name}"{" class=current" if name == current else ""}>{label}</a>'
            for name, label in NAV
        )
        who = esc(user) + (" (admin)" if admin else "")
        nav = (
            f'<nav>{items}<span class="who">{who}</span>'
            f'<form method="post" action="/console/signout" class="inline">{csrf_field(csrf)}'
            '<button type="submit">Sign out</button></form></nav>'
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(title)} · openkvs console</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="stylesheet" href="/console/static/console.css">'
        + (
            '<script src="/console/static/vendor/hls.min.js" defer></script>'
            if HLS_JS.is_file()
            else ""
        )
        + '<script src="/console/static/console.js" defer></script>'
        f'</head><body data-csrf="{esc(csrf)}">{nav}<main><h1>{esc(title)}</h1>{body}</main>'
        "</body></html>"
    )
