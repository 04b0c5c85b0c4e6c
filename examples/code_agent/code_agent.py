"""An agent skill: the model writes a Python program that answers the question, the engine runs it in
its sandbox (`execute_python`), and if the program fails the model sees the traceback once and fixes it.

Build: `pharia-skill build code_agent` (see README.md). The namespace must enable the native tool
`execute_python` and have a chat model.
"""

import json
import re
from typing import Any

from pharia_skill import ChatParams, Csi, Message, ToolError, skill
from pydantic import BaseModel

SYSTEM = (
    "You answer questions by writing a Python 3 program. The standard library is available; files, "
    "network and third-party packages are not. The value of the program's last expression is the answer. "
    "Reply with the program only, in one ```python code block."
)
FENCE = re.compile(r"```(?:python)?\s*\n(.*?)```", re.DOTALL)
ATTEMPTS = 2


class Input(BaseModel):
    question: str
    model: str = "llama-3.3-70b-instruct"


class Output(BaseModel):
    answer: Any = None
    """The program's result (the value of its last expression), or None when every attempt failed."""
    stdout: str = ""
    code: str = ""
    """The last program the model wrote."""
    attempts: int = 0
    error: str | None = None
    """`<type>: <message>` of the last failure, when every attempt failed."""


def program_in(reply: str) -> str:
    """The code block of the model's reply (or the whole reply when it has none)."""
    match = FENCE.search(reply)
    return (match.group(1) if match else reply).strip()


@skill
def code_agent(csi: Csi, input: Input) -> Output:
    """Answers a question by having the model write a Python program and running it in a sandbox."""
    messages = [Message.system(SYSTEM), Message.user(input.question)]
    code, error = "", None
    for attempt in range(1, ATTEMPTS + 1):
        reply = csi.chat(input.model, messages, ChatParams(max_tokens=1024)).message.content or ""
        code = program_in(reply)
        try:
            outcome = json.loads(csi.invoke_tool("execute_python", code=code).text())
        except ToolError as e:
            # The tool error is the same JSON outcome with `error` set: type, message and traceback.
            try:
                failure = json.loads(e.message)["error"]
            except (ValueError, KeyError, TypeError):  # not a program's failure (e.g. tool not enabled)
                return Output(code=code, attempts=attempt, error=e.message)
            error = f"{failure['type']}: {failure['message']}"
            messages.append(Message.assistant(reply))
            messages.append(
                Message.user(
                    f"The program failed:\n{failure['traceback'] or error}\n"
                    "Reply with the corrected program only."
                )
            )
            continue
        return Output(answer=outcome["result"], stdout=outcome["stdout"], code=code, attempts=attempt)
    return Output(code=code, attempts=ATTEMPTS, error=error)
