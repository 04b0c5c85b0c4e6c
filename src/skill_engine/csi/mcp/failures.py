"""How an MCP call failed: whether the session is broken, and whether the request certainly never ran."""

from __future__ import annotations

import asyncio

import httpx2
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, INVALID_REQUEST


class McpFailure(Exception):
    """The server could not be reached or answered outside the protocol; the text names the cause."""

    def __init__(self, message: str, retryable: bool = False, unsent: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        """The session is broken: drop it (and resend, for requests without side effects)."""
        self.unsent = unsent
        """The request certainly did not run on the server: safe to resend even a `tools/call`."""


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def describe(error: BaseException) -> str:
    """The innermost meaningful message of an error (task groups wrap transport errors in groups)."""
    leaves = [e for e in _leaves(error) if not isinstance(e, asyncio.CancelledError)] or _leaves(error)
    first = leaves[0]
    text = str(first) or type(first).__name__
    return text.splitlines()[0]


def is_http_rejection(error: BaseException) -> bool:
    """The server answered, but not in this transport's language (e.g. 404/405/400 on the wrong URL)."""
    for leaf in _leaves(error):
        if isinstance(leaf, MCPError) and leaf.code != CONNECTION_CLOSED:
            return True
        if isinstance(leaf, httpx2.HTTPStatusError) and 400 <= leaf.response.status_code < 500:
            return True
    return False


def lost_session(error: MCPError) -> bool:
    """Answers that mean "this session is gone": drop it and reconnect."""
    return error.code == CONNECTION_CLOSED or unknown_session(error)


def unknown_session(error: MCPError) -> bool:
    """The server refused the request because it does not know the session: the request did not run."""
    return error.code == INVALID_REQUEST and "session" in str(error).lower()


def never_connected(error: BaseException | None) -> bool:
    """The failure is a connection that could not be opened, so no request went out on it."""
    if error is None:
        return False
    leaves = _leaves(error)
    unsent = (httpx2.ConnectError, httpx2.ConnectTimeout)
    return bool(leaves) and all(isinstance(leaf, unsent) for leaf in leaves)
