"""A small Aleph Alpha inference API: `/complete` (plain and SSE), `/explain`, the OpenAI-compatible
`/chat/completions` (inherited from the OpenAI test server), and `/models/{model}/tokenizer`.

It records every request (path, headers, body) and insists on a bearer token like the real API:
token `bad-token` answers 401. Models: `unknown` answers 404 `UNKNOWN_MODEL`, `busy-once` answers 503
once per prompt and then succeeds, `word-model` has a tokenizer (a WordLevel tokenizer trained here on
a tiny corpus), any other model has none (404). The prompt `fail` answers 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from tests.support.openai_server import OpenAIServer

TOKENIZER_MODEL = "word-model"
CORPUS = ["hello world this is a test of the tokenizer", "one two three four five six"]


def word_tokenizer() -> str:
    """A WordLevel tokenizer (whitespace words) trained on `CORPUS`, as Hugging Face tokenizer JSON."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    tokenizer.enable_truncation(2)  # as some model tokenizers ship: must not cap chunk sizes
    return tokenizer.to_str()


class AlephAlphaServer(OpenAIServer):
    url = ""
    """Set by the fixture that starts the server."""

    def __init__(self) -> None:
        super().__init__()
        self.tokenizer_json = word_tokenizer()
        self.busy_seen: set[str] = set()
        self.app.router.routes.extend(
            [
                Route("/complete", self.complete, methods=["POST"]),
                Route("/explain", self.explain, methods=["POST"]),
                Route("/chat/completions", self.chat, methods=["POST"]),
                Route("/models/{model}/tokenizer", self.tokenizer, methods=["GET"]),
            ]
        )

    def _record_get(self, request: Request) -> None:
        self.requests.append({"path": request.url.path, "headers": dict(request.headers), "body": None})

    async def _accept(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        body = await self._record(request)
        return body, self._rejected(request, body["model"])

    @staticmethod
    def _rejected(request: Request, model: str) -> Response | None:
        if request.headers.get("authorization") == "Bearer bad-token":
            return JSONResponse({"error": "invalid token", "code": "UNAUTHENTICATED"}, status_code=401)
        if model == "unknown":
            return JSONResponse({"error": "model not found", "code": "UNKNOWN_MODEL"}, status_code=404)
        return None

    async def complete(self, request: Request) -> Response:
        body, rejected = await self._accept(request)
        if rejected is not None:
            return rejected
        prompt = body["prompt"][0]["data"]
        if prompt == "fail":
            return JSONResponse({"error": "the model broke", "code": "INTERNAL"}, status_code=500)
        if body["model"] == "busy-once" and prompt not in self.busy_seen:
            self.busy_seen.add(prompt)
            return JSONResponse({"error": "busy", "code": "QUEUE_FULL"}, status_code=503)
        words = ["done", "now"]
        completion = " " + " ".join(words)
        item: dict[str, Any] = {
            "completion": (prompt + completion) if body.get("echo") else completion,
            "finish_reason": "stop_sequence_reached" if body.get("stop_sequences") else "maximum_tokens",
        }
        if body.get("raw_completion"):
            item["raw_completion"] = item["completion"] + "<|endoftext|>"
        if body.get("tokens"):
            item["completion_tokens"] = words
            item["log_probs"] = [{w: -0.5, "maybe": -1.5, "never": -9.0} for w in words]
        if body.get("stream"):
            return self._sse(self._complete_chunks(item))
        return JSONResponse(
            {
                "model_version": "1",
                "completions": [item],
                "num_tokens_prompt_total": 4,
                "num_tokens_generated": len(words),
            }
        )

    @staticmethod
    async def _complete_chunks(item: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        for word in str(item["completion"]).split(" ")[1:]:
            yield {"type": "stream_chunk", "index": 0, "completion": f" {word}"}
        yield {"type": "stream_summary", "index": 0, "model_version": "1", "finish_reason": "end_of_text"}
        yield {"type": "completion_summary", "num_tokens_prompt_total": 4, "num_tokens_generated": 2}

    async def explain(self, request: Request) -> Response:
        body, rejected = await self._accept(request)
        if rejected is not None:
            return rejected
        prompt = body["prompt"][0]["data"]
        scores = [
            {"start": 0, "length": len(prompt), "score": 0.75},
            {"start": 0, "length": 1, "score": -0.25},
        ]
        first = (
            {"type": "target", "scores": []}
            if body["target"] == "image-first"
            else {"type": "text", "scores": scores}
        )
        return JSONResponse({"explanations": [{"target": body["target"], "items": [first]}]})

    async def tokenizer(self, request: Request) -> Response:
        self._record_get(request)
        model = request.path_params["model"]
        rejected = self._rejected(request, model)
        if rejected is not None:
            return rejected
        if request.headers.get("authorization") is None or model != TOKENIZER_MODEL:
            return JSONResponse({"error": "no tokenizer", "code": "UNKNOWN_MODEL"}, status_code=404)
        return Response(self.tokenizer_json, media_type="application/json")

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == path]

    def tokens(self, path: str) -> list[str | None]:
        return [r["headers"].get("authorization") for r in self.requests if r["path"] == path]
