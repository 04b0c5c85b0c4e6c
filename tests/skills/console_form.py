"""A function skill with a nested input schema, for the console's playground tests.

Its input has strings, numbers, booleans, an enum, an array and a nested object with defaults and
required fields. It prints one line (captured as a skill log line) and asks the chat model once, so its
trace shows a CSI call.
"""

from enum import Enum

from pharia_skill import ChatParams, Csi, Message, skill
from pydantic import BaseModel, Field


class Tone(str, Enum):
    friendly = "friendly"
    formal = "formal"


class Address(BaseModel):
    city: str = Field(description="Where the letter goes")
    zip_code: int = 10115


class Letter(BaseModel):
    recipient: str
    tone: Tone = Tone.friendly
    urgent: bool = False
    copies: int = 1
    tags: list[str] = Field(default_factory=list)
    address: Address


class Summary(BaseModel):
    line: str
    reply: str


@skill
def console_form(csi: Csi, input: Letter) -> Summary:
    """Writes a one-line summary of a letter and asks the model for a reply."""
    print(f"writing to {input.recipient} in {input.address.city}")
    line = (
        f"{input.tone.value} letter to {input.recipient} in {input.address.city} {input.address.zip_code}, "
        f"{input.copies} copies, urgent={input.urgent}, tags={','.join(input.tags)}"
    )
    answer = csi.chat("test-model", [Message.user(line)], ChatParams(max_tokens=16))
    return Summary(line=line, reply=answer.message.content)
