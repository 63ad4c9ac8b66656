"""Comparing JSON as text."""

from __future__ import annotations


def without_whitespace(text: str) -> str:
    """JSON ``text`` without the whitespace between tokens (strings untouched)."""
    out: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch not in " \t\r\n":
            out.append(ch)
    return "".join(out)
