"""An OpenAI-compatible backend that fails on purpose, for the fault suite (tests/faults/).

The model name picks the fault: `status-<code>` always answers that status; `flaky-<n>-<code>` answers
`<code>` (with `Retry-After: 0`) for the first n requests of a prompt, then succeeds; `malformed` answers
200 with a body that is not JSON; `wrong-shape` answers JSON without choices; `hang` never answers (it
waits until the engine disconnects); `drop-stream` sends two chunks of a stream, then drops the connection.
Anything else succeeds.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


class DroppedConnection(Exception):
    """Raised inside a streaming body: uvicorn closes the connection without finishing the response."""


class FaultyBackend:
    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.hanging = 0
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        model: str = body["model"]
        prompt = str(body["messages"][-1]["content"])
        self.attempts[f"{model}:{prompt}"] += 1
        attempt = self.attempts[f"{model}:{prompt}"]
        if model.startswith("status-"):
            return _error(int(model.removeprefix("status-")))
        if model.startswith("flaky-"):
            _, failures, code = model.split("-")
            if attempt <= int(failures):
                return _error(int(code), {"retry-after": "0"})
        if model == "malformed":
            return Response(b'{"choices": [', media_type="application/json")
        if model == "wrong-shape":
            return JSONResponse({"id": "x", "object": "chat.completion", "choices": []})
        if model == "hang":
            self.hanging += 1
            try:  # until the engine gives up and closes the connection
                while not await request.is_disconnected():
                    await asyncio.sleep(0.05)
            finally:
                self.hanging -= 1
            return Response(status_code=499)
        content = f"echo: {prompt}"
        if body.get("stream"):
            return StreamingResponse(self._stream(model, content), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "chatcmpl-faulty",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    @staticmethod
    async def _stream(model: str, content: str) -> AsyncIterator[bytes]:
        for i, word in enumerate(content.split()):
            delta = {"role": "assistant", "content": word} if i == 0 else {"content": " " + word}
            chunk = {
                "id": "c",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
            yield f"data: {json.dumps(chunk)}\n\n".encode()
            await asyncio.sleep(0.05)
            if model == "drop-stream" and i == 1:
                raise DroppedConnection
        end = {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        yield f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode()


def _error(status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": f"injected failure {status}", "code": None}},
        status_code=status,
        headers=headers,
    )
