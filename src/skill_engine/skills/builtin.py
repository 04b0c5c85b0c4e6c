"""The hard-coded `test-beta` skills every PhariaEngine has (engine-spec §5.1), written natively.

They let a fresh installation be tried without building anything, e.g. `test-beta/hello` streams `Hello`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from skill_engine.csi import Csi, CsiContext
from skill_engine.csi.errors import CsiError, CsiRefusal
from skill_engine.csi.tool_names import TEST_BETA
from skill_engine.csi.types import (
    ChatAppend,
    ChatBegin,
    ChatEnd,
    ChatParams,
    ChatRequest,
    FinishReason,
    InvokeRequest,
    Message,
    ToolArgument,
    ToolOutput,
)
from skill_engine.errors import ExecutionError, IsMessageStream, Refused, RuntimeFailure, UserCodeError
from skill_engine.metadata import SkillKind, SkillMetadata
from skill_engine.streaming import (
    MessageAppend,
    MessageBegin,
    MessageEnd,
    StreamItem,
    ToolBegin,
    ToolEnd,
    ToolError,
)

Emit = Callable[[StreamItem], Awaitable[None]]

DEBUG_FINISH_REASON = {
    FinishReason.STOP: "Stop",
    FinishReason.LENGTH: "Length",
    FinishReason.CONTENT_FILTER: "ContentFilter",
    FinishReason.TOOL_CALLS: "ToolCalls",
}


def _dummy() -> ExecutionError:
    return UserCodeError("I am a dummy Skill")


@dataclass(frozen=True)
class BuiltinSkill:
    name: str
    stream: Callable[[Csi, CsiContext, bytes, Emit], Awaitable[None]]
    """Called with the request's input (compact JSON bytes); the hard-coded skills ignore it."""
    run_error: Callable[[], ExecutionError]
    metadata_error: Callable[[], ExecutionError] | None = None
    kind: SkillKind = SkillKind.MESSAGE_STREAM
    fixed_metadata: SkillMetadata | None = None

    def metadata(self) -> SkillMetadata:
        if self.fixed_metadata is not None:
            return self.fixed_metadata
        if self.metadata_error is not None:
            raise self.metadata_error()
        return SkillMetadata(None, None, self.kind, None, None)


async def _hello(csi: Csi, ctx: CsiContext, input: bytes, emit: Emit) -> None:
    await emit(MessageBegin())
    for letter in "Hello":
        await emit(MessageAppend(letter))
    await emit(MessageEnd(None))


async def _saboteur(csi: Csi, ctx: CsiContext, input: bytes, emit: Emit) -> None:
    raise UserCodeError("Skill is a saboteur")


async def _tell_me_a_joke(csi: Csi, ctx: CsiContext, input: bytes, emit: Emit) -> None:
    request = ChatRequest(
        "llama-3.1-8b-instruct",
        [Message("user", "Tell me a joke!")],
        ChatParams(max_tokens=300, temperature=0.3),
    )
    await forward_chat_stream(csi, request, ctx, emit)


async def forward_chat_stream(csi: Csi, request: ChatRequest, ctx: CsiContext, emit: Emit) -> None:
    """Streams the model's answer as messages; an inference failure ends the stream as a runtime error."""
    try:
        stream = await csi.inference.chat_stream(request, ctx)
    except CsiRefusal as e:  # a namespace policy or token budget (docs/governance.md)
        raise Refused(e.text, e.status, e.headers, e.kind) from None
    except CsiError as e:
        raise RuntimeFailure(str(e)) from None
    try:
        while True:
            try:
                event = await stream.next()
            except CsiError as e:
                raise RuntimeFailure(str(e)) from None
            if event is None:
                break
            if isinstance(event, ChatBegin):
                await emit(MessageBegin(event.role))
            elif isinstance(event, ChatAppend):
                await emit(MessageAppend(event.content))
            elif isinstance(event, ChatEnd):
                await emit(MessageEnd(f'"{DEBUG_FINISH_REASON[event.finish_reason]}"'.encode()))
    finally:
        stream.close()


async def _tool_caller(csi: Csi, ctx: CsiContext, input: bytes, emit: Emit) -> None:
    request = InvokeRequest("add", [ToolArgument("a", b"1"), ToolArgument("b", b"2")])
    await emit(ToolBegin("add"))
    (result,) = await csi.tools.invoke(TEST_BETA, [request])
    if not isinstance(result, ToolOutput):
        await emit(ToolError("add", result))
        raise UserCodeError(result)
    await emit(ToolEnd("add"))
    await emit(MessageBegin())
    await emit(
        MessageAppend(f"The result of calling the add tool for a=1 and b=2 is: {''.join(result.contents)}")
    )
    await emit(MessageEnd(None))


BUILTINS: dict[str, BuiltinSkill] = {
    "hello": BuiltinSkill("hello", _hello, _dummy),
    "saboteur": BuiltinSkill("saboteur", _saboteur, IsMessageStream),
    "tell_me_a_joke": BuiltinSkill("tell_me_a_joke", _tell_me_a_joke, _dummy, metadata_error=_dummy),
    "tool_caller": BuiltinSkill(
        "tool_caller",
        _tool_caller,
        lambda: UserCodeError(
            "I am a `message_stream` skill. Use the `message_stream` endpoint to invoke me."
        ),
    ),
}


def builtin(namespace: str, name: str) -> BuiltinSkill | None:
    return BUILTINS.get(name) if namespace == TEST_BETA else None
