"""CSI spans following the OpenTelemetry GenAI semantic conventions (engine-spec §6.1).

A driver adopts them with one line, replacing its `fan_out(requests, one)`:

    return await genai.chat(requests, one, provider="openai")        # spans `chat` (+ `chat_concurrent`)
    return await genai.complete(requests, one, provider="aleph_alpha")
    return genai.traced_stream("chat", request, stream, provider="openai")
    return await genai.tools(requests, one)                          # spans `invoke_tool`
    return await genai.batch("search", requests, one, describe)      # any other CSI function

A batch of more than one request gets a parent `<function>_concurrent` span with `requests=<n>`. Request
parameters, token usage and finish reasons are always recorded; prompts and completions only with
`OTEL_GEN_AI_CONTENT_CAPTURE=true` (`gen_ai.input.messages` / `gen_ai.output.messages`, JSON strings of
`[{"role", "content"}]`; reasoning is never recorded). With tracing off these are a plain `fan_out`.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, Generic, TypeVar

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from skill_engine import telemetry
from skill_engine.csi.calls import EventStream, fan_out
from skill_engine.csi.types import (
    ChatAppend,
    ChatEnd,
    ChatRequest,
    ChatResponse,
    Completion,
    CompletionAppend,
    CompletionEnd,
    CompletionRequest,
    DocumentPath,
    ExplanationRequest,
    InvokeRequest,
    Message,
    SearchRequest,
    TokenUsage,
    ToolOutput,
    ToolResult,
    Usage,
)
from skill_engine.telemetry.usage import record as record_usage

In = TypeVar("In")
Out = TypeVar("Out")
Ev = TypeVar("Ev")
Attributes = dict[str, AttributeValue]


def _params(model: str, params: Any, provider: str, operation: str) -> Attributes:
    attributes: Attributes = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,
        "gen_ai.request.model": model,
    }
    for name in ("max_tokens", "temperature", "top_p", "top_k", "frequency_penalty", "presence_penalty"):
        value = getattr(params, name, None)
        if value is not None:
            attributes[f"gen_ai.request.{name}"] = value
    return attributes


def _messages(messages: Sequence[Message]) -> str:
    return json.dumps([{"role": m.role.lower(), "content": m.content or ""} for m in messages])


def chat_attributes(request: ChatRequest, provider: str, content: bool) -> Attributes:
    attributes = _params(request.model, request.params, provider, "chat")
    if content:
        attributes["gen_ai.input.messages"] = _messages(request.messages)
    return attributes


def completion_attributes(request: CompletionRequest, provider: str) -> Attributes:
    attributes = _params(request.model, request.params, provider, "text_completion")
    if request.params.stop:
        attributes["gen_ai.request.stop_sequences"] = list(request.params.stop)
    return attributes


def _usage(span: Span, usage: TokenUsage) -> None:
    span.set_attribute("gen_ai.usage.input_tokens", usage.prompt)
    span.set_attribute("gen_ai.usage.output_tokens", usage.completion)


def count_tokens(model: str, usage: TokenUsage, skill: tuple[str, str] | None = None) -> None:
    """`kernel_gen_ai_tokens_total` of the executing skill (tracing on or off)."""
    metrics = telemetry.current().metrics
    metrics.count_tokens(skill or telemetry.current_skill(), model, usage.prompt, usage.completion)
    record_usage(model, usage.prompt, usage.completion)


def _fail(span: Span, error: BaseException) -> None:
    span.set_attribute("error.type", type(error).__name__)
    span.set_status(Status(StatusCode.ERROR, str(error)))


@contextlib.contextmanager
def _item_span(tracer: Tracer, name: str, attributes: Attributes) -> Iterator[Span]:
    with tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as e:
            _fail(span, e)
            raise


async def _batch(
    function: str,
    requests: Sequence[In],
    one: Callable[[In], Coroutine[Any, Any, Out]],
    describe: Callable[[In], Attributes],
    record: Callable[[Span, Out], None],
    span_name: str | None = None,
) -> list[Out]:
    tracer = telemetry.current().tracing.tracer
    if tracer is None:
        return await fan_out(requests, one)

    async def traced(request: In) -> Out:
        with _item_span(tracer, span_name or function, describe(request)) as span:
            result = await one(request)
            record(span, result)
            return result

    if len(requests) <= 1:
        return await fan_out(requests, traced)
    with tracer.start_as_current_span(f"{function}_concurrent", attributes={"requests": len(requests)}):
        return await fan_out(requests, traced)


def _nothing(span: Span, result: object) -> None:
    return None


async def batch(
    function: str,
    requests: Sequence[In],
    one: Callable[[In], Coroutine[Any, Any, Out]],
    describe: Callable[[In], Attributes],
    span_name: str | None = None,
) -> list[Out]:
    """Any other CSI function (chunk, select_language, search, documents, ...): `<function>_concurrent` over
    one span per request, named `span_name` (default `function`), with the attributes `describe` gives."""
    return await _batch(function, requests, one, describe, _nothing, span_name)


def search_attributes(request: SearchRequest) -> Attributes:
    index = request.index_path
    return {
        "namespace": index.namespace,
        "collection": index.collection,
        "max_results": request.max_results,
        "min_score": "None" if request.min_score is None else request.min_score,
    }


def document_attributes(path: DocumentPath) -> Attributes:
    return {"namespace": path.namespace, "collection": path.collection, "name": path.name}


async def chat(
    requests: Sequence[ChatRequest],
    one: Callable[[ChatRequest], Coroutine[Any, Any, ChatResponse]],
    provider: str,
) -> list[ChatResponse]:
    """Runs `one` for each request (concurrently), each in a `chat` span."""
    content = telemetry.current().content_capture

    def record(span: Span, response: ChatResponse) -> None:
        _usage(span, response.usage)
        span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason.value])
        if content:
            output = [{"role": "assistant", "content": response.message.content or ""}]
            span.set_attribute("gen_ai.output.messages", json.dumps(output))

    async def counted(request: ChatRequest) -> ChatResponse:
        response = await one(request)
        count_tokens(request.model, response.usage)
        return response

    return await _batch("chat", requests, counted, lambda r: chat_attributes(r, provider, content), record)


async def complete(
    requests: Sequence[CompletionRequest],
    one: Callable[[CompletionRequest], Coroutine[Any, Any, Completion]],
    provider: str,
) -> list[Completion]:
    """Runs `one` for each request (concurrently), each in a `text_completion` span (no content capture)."""

    def record(span: Span, completion: Completion) -> None:
        _usage(span, completion.usage)
        span.set_attribute("gen_ai.response.finish_reasons", [completion.finish_reason.value])

    async def counted(request: CompletionRequest) -> Completion:
        completion = await one(request)
        count_tokens(request.model, completion.usage)
        return completion

    return await _batch(
        "complete",
        requests,
        counted,
        lambda r: completion_attributes(r, provider),
        record,
        span_name="text_completion",
    )


async def explain(
    requests: Sequence[ExplanationRequest],
    one: Callable[[ExplanationRequest], Coroutine[Any, Any, Out]],
    provider: str,
) -> list[Out]:
    """Runs `one` for each request (concurrently), each in an `explain` span."""

    def describe(request: ExplanationRequest) -> Attributes:
        return {
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": request.model,
            "model": request.model,
        }

    return await _batch("explain", requests, one, describe, lambda span, result: None)


def _tool_result(span: Span, result: ToolResult) -> None:
    if not isinstance(result, ToolOutput):  # a tool's error goes back to the skill as a string
        span.set_attribute("error.type", "tool_error")
        span.set_status(Status(StatusCode.ERROR, result))


async def tools(
    requests: Sequence[InvokeRequest], one: Callable[[InvokeRequest], Coroutine[Any, Any, ToolResult]]
) -> list[ToolResult]:
    """Runs `one` for each tool call (concurrently), each in an `invoke_tool` span."""

    def describe(request: InvokeRequest) -> Attributes:
        return {
            "tool_name": request.name,
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": request.name,
        }

    return await _batch("invoke_tool", requests, one, describe, _tool_result)


class TracedStream(Generic[Ev]):
    """Wraps a driver's event stream: token usage is counted, and with tracing on one span covers the
    stream from its creation until it ends, fails or is closed."""

    def __init__(self, inner: EventStream[Ev], model: str, span: Span | None, capture: bool) -> None:
        self.inner = inner
        self.model = model
        self.skill = telemetry.current_skill()
        self.span = span
        self.capture = capture and span is not None
        self._text: list[str] = []
        self._ended = False
        self._lock = threading.Lock()

    async def next(self) -> Ev | None:
        try:
            event = await self.inner.next()
        except BaseException as e:
            if self.span is not None:
                _fail(self.span, e)
            self._end()
            raise
        if isinstance(event, Usage):
            count_tokens(self.model, event.usage, self.skill)
        if self.span is None:
            if event is None:
                self._end()
            return event
        if event is None:
            self._end()
        elif isinstance(event, ChatAppend):
            if self.capture:
                self._text.append(event.content)
        elif isinstance(event, CompletionAppend):
            pass  # completions are never recorded
        elif isinstance(event, ChatEnd | CompletionEnd):
            self.span.set_attribute("gen_ai.response.finish_reasons", [event.finish_reason.value])
        elif isinstance(event, Usage):
            _usage(self.span, event.usage)
        return event

    def close(self) -> None:
        self.inner.close()
        self._end()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _end(self) -> None:
        with self._lock:
            if self._ended or self.span is None:
                self._ended = True
                return
            self._ended = True
        if self.capture:
            output = [{"role": "assistant", "content": "".join(self._text)}]
            self.span.set_attribute("gen_ai.output.messages", json.dumps(output))
        self.span.end()


def traced_stream(
    operation: str,
    request: ChatRequest | CompletionRequest,
    stream: EventStream[Ev],
    provider: str,
) -> EventStream[Ev]:
    """`stream` inside a `chat` (or `text_completion`) span; the span ends with the stream."""
    current = telemetry.current()
    tracer = current.tracing.tracer
    if tracer is None:
        return TracedStream(stream, request.model, None, False)
    if isinstance(request, ChatRequest):
        attributes = chat_attributes(request, provider, current.content_capture)
        capture = current.content_capture
    else:
        attributes = completion_attributes(request, provider)
        capture = False
    span = tracer.start_span(operation, kind=SpanKind.CLIENT, attributes=attributes)
    # Not made current: the stream outlives this call, and nothing runs inside it.
    return TracedStream(stream, request.model, span, capture)
