"""Version-independent CSI data types.

The bindings of each WIT version convert wasm values to and from these; drivers only ever see these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    TOOL_CALLS = "tool_calls"


@dataclass(frozen=True)
class Logprobs:
    """`no`, `sampled`, or `top` with `top_n` alternatives."""

    kind: Literal["no", "sampled", "top"] = "no"
    top_n: int = 0


@dataclass(frozen=True)
class Logprob:
    token: bytes
    logprob: float


@dataclass(frozen=True)
class Distribution:
    sampled: Logprob
    top: list[Logprob] = field(default_factory=list)


@dataclass(frozen=True)
class TokenUsage:
    prompt: int
    completion: int


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asks for (chat "v2", WIT 0.4+); `arguments` is JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Message:
    role: str
    content: str | None
    # Chat "v2" (WIT 0.4+) only:
    reasoning_content: str | None = None
    """In responses; ignored in requests."""
    tool_calls: list[ToolCall] | None = None
    """Assistant messages: the calls the model asked for."""
    tool_call_id: str | None = None
    """Tool messages: which call this answers."""


@dataclass(frozen=True)
class Function:
    """A tool the model may call (chat "v2"); `parameters` is a JSON Schema object."""

    name: str
    description: str | None = None
    parameters: object = None
    strict: bool | None = None


@dataclass(frozen=True)
class ToolChoice:
    kind: Literal["none", "auto", "required", "named"]
    name: str | None = None
    """The function to call, for `named`."""


@dataclass(frozen=True)
class JsonSchema:
    name: str
    description: str | None = None
    schema: object = None
    strict: bool | None = None


@dataclass(frozen=True)
class ResponseFormat:
    kind: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchema | None = None


@dataclass(frozen=True)
class ChatParams:
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logprobs: Logprobs = Logprobs()
    # Chat "v2" (WIT 0.4+) only:
    tools: list[Function] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[Message]
    params: ChatParams = ChatParams()
    v2: bool = False
    """Chat "v2" (WIT 0.4+): tool calls and reasoning in the answer, no "v1" content validation."""


@dataclass(frozen=True)
class ChatResponse:
    message: Message
    finish_reason: FinishReason
    logprobs: list[Distribution]
    usage: TokenUsage


@dataclass(frozen=True)
class CompletionParams:
    max_tokens: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    return_special_tokens: bool = False
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logprobs: Logprobs = Logprobs()
    echo: bool = False


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    prompt: str
    params: CompletionParams = CompletionParams()


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: FinishReason
    logprobs: list[Distribution]
    usage: TokenUsage


@dataclass(frozen=True)
class ExplanationRequest:
    prompt: str
    target: str
    model: str
    granularity: Literal["auto", "word", "sentence", "paragraph"] = "auto"


@dataclass(frozen=True)
class TextScore:
    start: int
    length: int
    score: float


@dataclass(frozen=True)
class ChatBegin:
    role: str


@dataclass(frozen=True)
class ChatAppend:
    content: str
    logprobs: list[Distribution] = field(default_factory=list)


@dataclass(frozen=True)
class ChatEnd:
    finish_reason: FinishReason


@dataclass(frozen=True)
class Usage:
    usage: TokenUsage


@dataclass(frozen=True)
class CompletionAppend:
    text: str
    logprobs: list[Distribution] = field(default_factory=list)


@dataclass(frozen=True)
class CompletionEnd:
    finish_reason: FinishReason


@dataclass(frozen=True)
class ChatReasoning:
    """Reasoning text of a streamed answer (chat "v2")."""

    text: str


@dataclass(frozen=True)
class ToolCallChunk:
    """Part of a streamed tool call (chat "v2"): the call at `index` grows by these fields."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str | None = None


@dataclass(frozen=True)
class ChatToolCall:
    chunks: list[ToolCallChunk]


ChatEvent = ChatBegin | ChatAppend | ChatEnd | Usage
ChatEventV2 = ChatEvent | ChatReasoning | ChatToolCall
"""What a chat stream yields for a `v2` request."""
CompletionEvent = CompletionAppend | CompletionEnd | Usage


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, object]


@dataclass(frozen=True)
class ToolArgument:
    name: str
    value: bytes  # JSON


@dataclass(frozen=True)
class InvokeRequest:
    name: str
    arguments: list[ToolArgument]


@dataclass(frozen=True)
class ToolOutput:
    """Text contents of a successful tool call."""

    contents: list[str]


ToolResult = ToolOutput | str  # a str is the error message returned to the skill


# -- document index (engine-spec §4.3 `document-index`, §4.5) ----------------------------------------


@dataclass(frozen=True)
class IndexPath:
    namespace: str
    collection: str
    index: str


@dataclass(frozen=True)
class DocumentPath:
    namespace: str
    collection: str
    name: str


@dataclass(frozen=True)
class TextCursor:
    """A position in a document: `item` indexes its contents, `position` counts characters; inclusive."""

    item: int
    position: int


MetadataValue = str | int | bool
ConditionKind = Literal[
    "greater_than",
    "greater_than_or_equal_to",
    "less_than",
    "less_than_or_equal_to",
    "after",
    "at_or_after",
    "before",
    "at_or_before",
    "equal_to",
    "is_null",
]
CONDITION_KINDS: tuple[ConditionKind, ...] = (
    "greater_than",
    "greater_than_or_equal_to",
    "less_than",
    "less_than_or_equal_to",
    "after",
    "at_or_after",
    "before",
    "at_or_before",
    "equal_to",
    "is_null",
)


@dataclass(frozen=True)
class MetadataCondition:
    """One condition on a metadata field: numbers for the comparisons, ISO-8601 strings for the time ones,
    `str | int | bool` for `equal_to`, `True` for `is_null`."""

    kind: ConditionKind
    value: float | MetadataValue


@dataclass(frozen=True)
class MetadataFilter:
    field: str
    condition: MetadataCondition


FilterKind = Literal["with", "with_one_of", "without"]
"""`with` = all conditions hold (the WIT's `with-all`), `with_one_of` = any, `without` = none."""


@dataclass(frozen=True)
class SearchFilter:
    kind: FilterKind
    conditions: list[MetadataFilter]


@dataclass(frozen=True)
class SearchRequest:
    index_path: IndexPath
    query: str
    max_results: int
    min_score: float | None = None
    filters: list[SearchFilter] = field(default_factory=list)


@dataclass(frozen=True)
class SearchResult:
    document_path: DocumentPath
    content: str
    score: float
    start: TextCursor
    end: TextCursor


@dataclass(frozen=True)
class TextContent:
    text: str


@dataclass(frozen=True)
class ImageContent:
    """Images are reported but their bytes are not exposed to skills."""


Modality = TextContent | ImageContent


def modality_from_json(item: object) -> Modality | None:
    """A document content item as the Document Index writes it (`{"modality": "text", "text": ...}` or
    `{"modality": "image", ...}`), or None if it is neither."""
    modality = item.get("modality") if isinstance(item, dict) else None
    if modality == "text" and isinstance(item, dict) and isinstance(item.get("text"), str):
        return TextContent(item["text"])
    if modality == "image":
        return ImageContent()
    return None


Json = dict[str, "Json"] | list["Json"] | str | int | float | bool | None


@dataclass(frozen=True)
class Document:
    path: DocumentPath
    contents: list[Modality]
    metadata: Json
