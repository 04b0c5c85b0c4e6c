"""A skill that misbehaves on purpose, for the engine's hostile-skill suite (tests/hostile/).

Selected by ``mode``; the modes the probe skill already has (busy, sleep, alloc, file, env, socket) are
not repeated. `metadata()` always calls the CSI, which the engine must refuse. Raw modes bypass the SDK's
JSON encoding to return bytes a well-behaved SDK skill never would.
"""

import os
import socket
import sys
import time
from typing import Any

from pharia_skill import ChatParams, ChatRequest, Csi, Message, skill
from pharia_skill.wit_csi import WitCsi
from pydantic import BaseModel


class Input(BaseModel):
    mode: str
    n: int = 0
    model: str = "test-model"


class Output(BaseModel):
    result: Any = None


def _deeper(depth: int) -> int:
    return _deeper(depth + 1) + 1


def _escape() -> dict[str, str]:
    """Tries every way out of the sandbox; each outcome is reported by name."""
    report: dict[str, str] = {}

    def attempt(name: str, action: Any) -> None:
        try:
            report[name] = f"ok: {str(action())[:80]}"
        except BaseException as e:  # noqa: BLE001 - every failure is the expected outcome
            report[name] = type(e).__name__

    attempt("read_passwd", lambda: open("/etc/passwd").read())
    attempt("list_root", lambda: os.listdir("/"))
    attempt("list_cwd", lambda: os.listdir("."))
    attempt("write_tmp", lambda: open("/tmp/hostile", "w").write("x"))
    attempt("environ", lambda: dict(os.environ) or (_ for _ in ()).throw(KeyError("empty")))
    attempt("dns", lambda: socket.getaddrinfo("localhost", 80))
    attempt("tcp", lambda: socket.create_connection(("127.0.0.1", 22), timeout=1))
    attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 53)))
    attempt("argv", lambda: sys.argv[1])
    return report


@skill
def hostile(csi: Csi, input: Input) -> Output:
    """A skill that misbehaves on purpose."""
    mode = input.mode
    if mode == "ok":
        return Output(result="fine")
    if mode == "recurse":
        sys.setrecursionlimit(10**9)
        return Output(result=_deeper(0))
    if mode == "recurse_python":
        return Output(result=_deeper(0))
    if mode == "stdout":
        chunk = "x" * (1024 * 1024 - 1)
        for _ in range(input.n):
            print(chunk)
        return Output(result="printed")
    if mode == "clock":
        return Output(result={"time": time.time(), "monotonic": time.monotonic()})
    if mode == "escape":
        return Output(result=_escape())
    if mode == "batch":
        requests = [ChatRequest(input.model, [Message.user(f"q{i}")], ChatParams(max_tokens=1)) for i in range(input.n)]
        return Output(result=len(csi.chat_concurrent(requests)))
    if mode == "chat":
        return Output(result=csi.chat(input.model, [Message.user("hi")], ChatParams(max_tokens=input.n or 1)).message.content)
    raise ValueError(f"unknown mode {mode}")


_SdkHandler = SkillHandler  # type: ignore[name-defined]  # noqa: F821 - created by @skill


class SkillHandler(_SdkHandler):  # type: ignore[misc,valid-type]
    def run(self, input: bytes) -> bytes:
        if input.startswith(b'{"mode":"huge_output"'):
            size = int(input.split(b'"n":')[1].rstrip(b"}"))
            return b'"' + b"x" * size + b'"'
        if input == b'{"mode":"invalid_json"}':
            return b"{'not': json}"
        if input == b'{"mode":"not_utf8"}':
            return b'"\xff\xfe"'
        return super().run(input)

    def metadata(self) -> Any:
        WitCsi().chat("test-model", [Message.user("metadata must not do this")], ChatParams(max_tokens=1))
        return super().metadata()
