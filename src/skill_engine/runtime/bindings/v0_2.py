"""Host object for `pharia:skill@0.2.x` (0.2.0 – 0.2.10): function skills importing one `csi` interface.

Every 0.2 function is a single-request form of a 0.3 function, so each converts its arguments to the 0.3
shapes and calls the `Host03` method: the same drivers, the same errors, and chat goes the
"v1" way (content required, no tool calls). 0.2 has no metadata export and no message streams.
"""

from __future__ import annotations

from typing import Any

from wasmtime.component import Linker, Variant

from skill_engine.runtime.bindings import Interface, define, field, record
from skill_engine.runtime.bindings.v0_3 import Host03

VERSION = None
"""What `/metadata` reports: 0.2 skills have no metadata export, so everything is null."""
SEMVER = "0.2.10"
_ROLES = {"user", "system"}  # anything else the backend answers with becomes `assistant`


def _completion_request(model: str, prompt: str, params: Any, special_tokens: bool) -> Any:
    return record(
        model=model,
        prompt=prompt,
        params=record(
            max_tokens=field(params, "max-tokens"),
            temperature=field(params, "temperature"),
            top_k=field(params, "top-k"),
            top_p=field(params, "top-p"),
            stop=list(field(params, "stop")),
            return_special_tokens=special_tokens,
            frequency_penalty=None,
            presence_penalty=None,
            logprobs=Variant("no"),
        ),
    )


def _completion(completion: Any) -> Any:
    return record(text=field(completion, "text"), finish_reason=field(completion, "finish-reason"))


def _chat_request(model: str, messages: list[Any], params: Any) -> Any:
    return record(
        model=model,
        messages=[record(role=field(m, "role"), content=field(m, "content")) for m in messages],
        params=record(
            max_tokens=field(params, "max-tokens"),
            temperature=field(params, "temperature"),
            top_p=field(params, "top-p"),
            frequency_penalty=None,
            presence_penalty=None,
            logprobs=Variant("no"),
        ),
    )


def _chat_response(response: Any) -> Any:
    message = field(response, "message")
    role = str(field(message, "role")).lower()
    return record(
        message=record(role=role if role in _ROLES else "assistant", content=field(message, "content")),
        finish_reason=field(response, "finish-reason"),
    )


class Host02:
    """The one `csi` interface of 0.2, each function a call of the matching `Host03` method."""

    def __init__(self, v0_3: Host03) -> None:
        self.v0_3 = v0_3

    def complete(self, store: Any, model: str, prompt: str, params: Any) -> Any:
        (completion,) = self.v0_3.complete(store, [_completion_request(model, prompt, params, False)])
        return _completion(completion)

    def complete_return_special_tokens(self, store: Any, model: str, prompt: str, params: Any) -> Any:
        (completion,) = self.v0_3.complete(store, [_completion_request(model, prompt, params, True)])
        return _completion(completion)

    def complete_all(self, store: Any, requests: list[Any]) -> list[Any]:
        converted = [
            _completion_request(field(r, "model"), field(r, "prompt"), field(r, "params"), False)
            for r in requests
        ]
        return [_completion(c) for c in self.v0_3.complete(store, converted)]

    def chat(self, store: Any, model: str, messages: list[Any], params: Any) -> Any:
        (response,) = self.v0_3.chat(store, [_chat_request(model, messages, params)])
        return _chat_response(response)

    def chunk(self, store: Any, text: str, params: Any) -> list[str]:
        params_v3 = record(model=field(params, "model"), max_tokens=field(params, "max-tokens"), overlap=0)
        (chunks,) = self.v0_3.chunk(store, [record(text=text, params=params_v3)])
        return list(chunks)

    def select_language(self, store: Any, text: str, languages: list[str]) -> str | None:
        # The 0.2 `language` enum (eng, deu) lifts to the same ISO 639-3 strings 0.3 uses.
        (selected,) = self.v0_3.select_language(store, [record(text=text, languages=list(languages))])
        return selected if isinstance(selected, str) else None

    def search(
        self, store: Any, index_path: Any, query: str, max_results: int, min_score: float | None
    ) -> Any:
        request = record(
            index_path=index_path, query=query, max_results=max_results, min_score=min_score, filters=[]
        )
        (results,) = self.v0_3.search(store, [request])
        return [
            record(
                document_path=field(r, "document-path"), content=field(r, "content"), score=field(r, "score")
            )
            for r in results
        ]

    def document_metadata(self, store: Any, document_path: Any) -> bytes | None:
        (metadata,) = self.v0_3.document_metadata(store, [document_path])
        return metadata  # type: ignore[no-any-return]

    def documents(self, store: Any, paths: list[Any]) -> list[Any]:
        # 0.2 and 0.3 documents have the same shape (path, contents: text | image, metadata bytes).
        return list(self.v0_3.documents(store, paths))

    def interfaces(self) -> dict[str, Interface]:
        return {
            "csi": Interface(
                {
                    "complete": self.complete,
                    "complete-return-special-tokens": self.complete_return_special_tokens,
                    "complete-all": self.complete_all,
                    "chat": self.chat,
                    "chunk": self.chunk,
                    "select-language": self.select_language,
                    "search": self.search,
                    "document-metadata": self.document_metadata,
                    "documents": self.documents,
                }
            )
        }

    def bind(self, linker: Linker) -> None:
        define(linker, SEMVER, self.interfaces())
