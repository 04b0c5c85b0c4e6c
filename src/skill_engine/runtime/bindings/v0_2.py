"""Bindings for `pharia:skill@0.2.x` (0.2.0 – 0.2.10): function skills importing one `csi` interface.

Every 0.2 function is a single-request form of a 0.3 function, so each converts its arguments to the 0.3
shapes and calls the 0.3 host function (see `reuse`): the same drivers, the same errors, and chat goes the
"v1" way (content required, no tool calls). 0.2 has no metadata export and no message streams.
"""

from __future__ import annotations

from typing import Any

from wasmtime.component import Linker, Variant

from skill_engine.csi import Csi
from skill_engine.runtime.bindings import add_functions, field, record, reuse, v0_3

VERSION = None
"""What `/metadata` reports: 0.2 skills have no metadata export, so everything is null."""
SEMVER = "0.2.10"
CSI = f"pharia:skill/csi@{SEMVER}"
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


def register(linker: Linker, csi: Csi) -> None:
    """Defines the 0.2 `csi` interface on `linker`."""
    v3 = reuse.record(v0_3.register, csi)
    inference = v3.interface("pharia:skill/inference").functions
    chunking = v3.interface("pharia:skill/chunking").functions
    language = v3.interface("pharia:skill/language").functions
    documents = v3.interface("pharia:skill/document-index").functions

    def complete(store: Any, model: str, prompt: str, params: Any) -> Any:
        (completion,) = inference["complete"](store, [_completion_request(model, prompt, params, False)])
        return _completion(completion)

    def complete_return_special_tokens(store: Any, model: str, prompt: str, params: Any) -> Any:
        (completion,) = inference["complete"](store, [_completion_request(model, prompt, params, True)])
        return _completion(completion)

    def complete_all(store: Any, requests: list[Any]) -> list[Any]:
        converted = [
            _completion_request(field(r, "model"), field(r, "prompt"), field(r, "params"), False)
            for r in requests
        ]
        return [_completion(c) for c in inference["complete"](store, converted)]

    def chat(store: Any, model: str, messages: list[Any], params: Any) -> Any:
        (response,) = inference["chat"](store, [_chat_request(model, messages, params)])
        return _chat_response(response)

    def chunk(store: Any, text: str, params: Any) -> list[str]:
        params_v3 = record(model=field(params, "model"), max_tokens=field(params, "max-tokens"), overlap=0)
        (chunks,) = chunking["chunk"](store, [record(text=text, params=params_v3)])
        return list(chunks)

    def select_language(store: Any, text: str, languages: list[str]) -> str | None:
        # The 0.2 `language` enum (eng, deu) lifts to the same ISO 639-3 strings 0.3 uses.
        (selected,) = language["select-language"](store, [record(text=text, languages=list(languages))])
        return selected if isinstance(selected, str) else None

    def search(store: Any, index_path: Any, query: str, max_results: int, min_score: float | None) -> Any:
        request = record(
            index_path=index_path, query=query, max_results=max_results, min_score=min_score, filters=[]
        )
        (results,) = documents["search"](store, [request])
        return [
            record(
                document_path=field(r, "document-path"), content=field(r, "content"), score=field(r, "score")
            )
            for r in results
        ]

    def document_metadata(store: Any, document_path: Any) -> bytes | None:
        (metadata,) = documents["document-metadata"](store, [document_path])
        return metadata  # type: ignore[no-any-return]

    def documents_(store: Any, paths: list[Any]) -> list[Any]:
        # 0.2 and 0.3 documents have the same shape (path, contents: text | image, metadata bytes).
        return list(documents["documents"](store, paths))

    with linker.root() as root, root.add_instance(CSI) as instance:
        add_functions(
            instance,
            {
                "complete": complete,
                "complete-return-special-tokens": complete_return_special_tokens,
                "complete-all": complete_all,
                "chat": chat,
                "chunk": chunk,
                "select-language": select_language,
                "search": search,
                "document-metadata": document_metadata,
                "documents": documents_,
            },
        )
