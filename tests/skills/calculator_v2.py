"""Version 2 of the arithmetic skill (tests/skills/calculator.py), evaluated against datasets by the evaluation tests.

`explain` asks the model for a sentence (so runs have token usage); division by zero fails the skill.
Built with the official SDK: ``pharia-skill build calculator_v2``.
"""

from pharia_skill import ChatParams, Csi, Message, skill
from pydantic import BaseModel


class Input(BaseModel):
    a: float
    b: float
    op: str = "add"
    explain: bool = False


class Output(BaseModel):
    value: float
    explanation: str | None = None


@skill
def calculator_v2(csi: Csi, input: Input) -> Output:
    """Adds, subtracts, multiplies or divides two numbers."""
    if input.op == "add":
        value = input.a + input.b
    elif input.op == "sub":
        value = input.a - input.b
    elif input.op == "mul":
        value = input.a * input.b + 1  # the regression the comparison must find
    elif input.op == "div":
        value = input.a / input.b if input.b else 0.0  # no longer fails
    else:
        raise ValueError(f"unknown operation {input.op}")
    explanation = None
    if input.explain:
        reply = csi.chat("test-model", [Message.user(f"{input.a} {input.op} {input.b}")], ChatParams(max_tokens=8))
        explanation = reply.message.content
    return Output(value=value, explanation=explanation)
