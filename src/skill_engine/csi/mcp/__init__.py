"""MCP client: one session per server URL, shared by every namespace that lists the server (engine-spec §8).

Built on the official `mcp` package (`mcp.Client`), which negotiates the protocol version itself: it probes
`server/discover` for the stateless 2026 protocol and falls back to the `initialize` handshake
(2024-11-05 … 2025-11-25) for older servers.

Transports: Streamable HTTP (answers as JSON or as an SSE stream — the SDK reads both; this is what
PhariaEngine calls "JSON" and "SSE" servers) and the older HTTP+SSE transport (a GET event stream plus
POSTs to the endpoint it announces). Which one a URL speaks is found out like the MCP specification's
backwards-compatibility section suggests: try Streamable HTTP first (the legacy transport first when the
URL path ends in `/sse`), and fall back to the other one when the server rejects the first at HTTP level.
The answer is remembered per URL.

A session lives in a task of its own (anyio task groups must be left by the task that entered them).
Every call is bounded by `call_timeout`, every connect by `connect_timeout`. A session whose transport
broke (server restarted, connection refused, "Session not found" from a stateful server that lost its
sessions) is dropped; later calls reconnect. A failed `tools/list` is retried once on a new session. A
`tools/call` has side effects, so it is sent again only when it provably never ran: the connection
could not be opened, or the server answered that it does not know the session. Once the request may have
reached the server (connection lost while waiting, timeout), the caller gets the error instead.

Servers a namespace marks for token forwarding get a session per caller token, so the caller's bearer
token reaches them as `Authorization: Bearer <token>`; no other server ever sees it.

Modules: `connection` (one reconnecting session per URL and caller token), `failures` (what a failure
means for resending), `results` (tool answers and arguments), `servers` (namespaces, listings, calls).
"""

from skill_engine.csi.mcp.connection import McpConnection, McpSettings
from skill_engine.csi.mcp.failures import McpFailure, describe
from skill_engine.csi.mcp.results import arguments_of, could_not_execute, tool_result
from skill_engine.csi.mcp.servers import McpServers

__all__ = [
    "McpConnection",
    "McpFailure",
    "McpServers",
    "McpSettings",
    "arguments_of",
    "could_not_execute",
    "describe",
    "tool_result",
]
