"""Guest-controlled names as URL path segments (model, namespace, collection, index and document names).

A skill decides these strings, so they must never change the shape of an upstream URL: each one is
percent-encoded as exactly one path segment (`/`, `?`, `#` and `%` included, so `%2F` arrives as
`%252F`), and the names an HTTP client or proxy would resolve as dot segments (`.`, `..`) or an empty
segment are refused before any request is sent.
"""

from __future__ import annotations

from urllib.parse import quote

from skill_engine.csi.errors import CsiError

_DOT_SEGMENTS = ("", ".", "..")


class InvalidSegment(CsiError):
    """A name that cannot be sent as one path segment."""


def segment(value: str, what: str) -> str:
    """`value` percent-encoded as one path segment; InvalidSegment for empty, `.` and `..`."""
    if value in _DOT_SEGMENTS:
        raise InvalidSegment(f"Invalid {what} {value!r}: it cannot be used in a URL path.")
    return quote(value, safe="")
