"""A small OpenAI-compatible server: answers chat and completions and records what it was sent.

Behaviour is chosen by the model name: `slow-<s>` answers after s seconds, `fail-500` answers 500,
`unknown-model` answers 404 with `model_not_found`. Chat answers `echo: <last message content>`.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.servers import delay


class OpenAIServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
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

    async def chat(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        model = body["model"]
        await delay(model)
        failure = self._failure(model)
        if failure is not None:
            return failure
        content = f"echo: {body['messages'][-1]['content']}"
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

    async def completions(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        model = body["model"]
        await delay(model)
        failure = self._failure(model)
        if failure is not None:
            return failure
        return JSONResponse(
            {
                "id": "cmpl-test",
                "object": "text_completion",
                "model": model,
                "choices": [{"index": 0, "text": f" completed: {body['prompt']}", "finish_reason": "length"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 16, "total_tokens": 21},
            }
        )
