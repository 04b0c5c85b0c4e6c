"""A small OpenAI-compatible server: answers chat and completions and records what it was sent.

Behaviour is chosen by the model name: `slow-<s>` answers after s seconds, `fail-500` answers 500,
`unknown-model` answers 404 with `model_not_found`, `gated` waits until the test opens `gate`, `endless`
streams forever. Chat answers `echo: <last message content>`; streams send it word by word as real SSE.
`tool-call` answers a user message with its content verbatim (so a test can script a tool call the SDK's
`chat_stream(..., tools=...)` loop parses) and echoes anything else (e.g. the tool result).
Models in `CANNED` answer chat with reasoning or tool calls (as message and as stream deltas). A model
in `scripted` (set by a test) answers with the next of its scripted replies, in order.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.servers import delay

_CALL = {"id": "call-9", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
CANNED: dict[str, tuple[dict[str, Any], str, list[dict[str, Any]]]] = {
    # model: (message, finish reason, stream deltas after the role)
    "thinker": (
        {"role": "assistant", "content": "<think>pondering</think> The answer"},
        "stop",
        [{"content": "<think>I am "}, {"content": "thinking...</think>The ans"}, {"content": "wer"}],
    ),
    "reasoner": (
        {"role": "assistant", "content": "42", "reasoning_content": "deep thoughts"},
        "stop",
        [{"reasoning_content": "deep "}, {"reasoning_content": "thoughts"}, {"content": "42"}],
    ),
    # LLM judges for the evaluation tests: a verdict wrapped in prose, and a low one in a code fence.
    "judge": (
        {"role": "assistant", "content": 'Verdict: {"score": 0.8, "reason": "close enough"}'},
        "stop",
        [{"content": '{"score": 0.8, "reason": "close enough"}'}],
    ),
    "judge-harsh": (
        {"role": "assistant", "content": '```json\n{"score": 0.2, "reason": "not convincing"}\n```'},
        "stop",
        [{"content": '{"score": 0.2, "reason": "not convincing"}'}],
    ),
    "tool-caller": (
        {"role": "assistant", "content": None, "tool_calls": [_CALL]},
        "tool_calls",
        [
            {"tool_calls": [{"index": 0, "id": "call-9", "function": {"name": "weather", "arguments": ""}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Paris"}'}}]},
        ],
    ),
}


class OpenAIServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.scripted: dict[str, list[str]] = {}
        self.gate = threading.Event()
        self.open_streams = 0
        self.closed_streams = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/completions", self.completions, methods=["POST"]),
            ]
        )

    async def _record(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        self.requests.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
        return body

    @staticmethod
    def _failure(model: str) -> JSONResponse | None:
        if model == "fail-500":
            return JSONResponse({"error": {"message": "backend exploded", "code": None}}, status_code=500)
        if model == "unknown-model":
            return JSONResponse(
                {"error": {"message": "no such model", "code": "model_not_found"}}, status_code=404
            )
        return None

    async def chat(self, request: Request) -> Response:
        body = await self._record(request)
        model = body["model"]
        await delay(model)
        if model == "gated":
            while not self.gate.is_set():
                await asyncio.sleep(0.02)
        failure = self._failure(model)
        if failure is not None:
            return failure
        if model in CANNED:
            return self._canned(body)
        content = self.reply(body)
        if body.get("stream"):
            return self._sse(self._chat_chunks(model, content))
        return JSONResponse(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            }
        )

    def reply(self, body: dict[str, Any]) -> str:
        """The assistant's answer to a chat request."""
        last = body["messages"][-1]
        script = self.scripted.get(body["model"])
        if script:
            return script.pop(0)
        if body["model"] == "tool-call" and last["role"] == "user":
            return str(last["content"])
        return f"echo: {last['content']}"

    def _canned(self, body: dict[str, Any]) -> Response:
        message, finish, deltas = CANNED[body["model"]]
        usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            return JSONResponse({"id": "c", "object": "chat.completion", "choices": [choice], "usage": usage})

        async def chunks() -> AsyncIterator[dict[str, Any]]:
            for delta, reason in [({"role": "assistant"}, None), *((d, None) for d in deltas), ({}, finish)]:
                yield {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}
            yield {"id": "c", "choices": [], "usage": usage}

        return self._sse(chunks())

    def _sse(self, chunks: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            self.open_streams += 1
            try:
                async for chunk in chunks:
                    yield f"data: {json.dumps(chunk)}\n\n".encode()
                yield b"data: [DONE]\n\n"
            finally:
                self.closed_streams += 1

        return StreamingResponse(body(), media_type="text/event-stream")

    @staticmethod
    async def _chat_chunks(model: str, content: str) -> AsyncIterator[dict[str, Any]]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return {"id": "c", "object": "chat.completion.chunk", "model": model, "choices": [choice]}

        yield chunk({"role": "assistant", "content": ""})
        if model == "endless":
            n = 0
            while True:
                yield chunk({"content": f"{n} "})
                n += 1
                await asyncio.sleep(0.05)
        for i, word in enumerate(content.split(" ")):
            yield chunk({"content": word if i == 0 else f" {word}"})
        yield chunk({}, "stop")
        yield {"id": "c", "object": "chat.completion.chunk", "model": model, "choices": []}
        usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        yield {"id": "c", "object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage}

    async def completions(self, request: Request) -> Response:
        body = await self._record(request)
        model = body["model"]
        await delay(model)
        failure = self._failure(model)
        if failure is not None:
            return failure
        text = f" completed: {body['prompt']}"
        if body.get("stream"):

            async def chunks() -> AsyncIterator[dict[str, Any]]:
                for word in text.split(" ")[1:]:
                    yield {"choices": [{"index": 0, "text": f" {word}", "finish_reason": None}]}
                yield {"choices": [{"index": 0, "text": "", "finish_reason": "length"}]}
                yield {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}

            return self._sse(chunks())
        return JSONResponse(
            {
                "id": "cmpl-test",
                "object": "text_completion",
                "model": model,
                "choices": [{"index": 0, "text": f" completed: {body['prompt']}", "finish_reason": "length"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 16, "total_tokens": 21},
            }
        )
