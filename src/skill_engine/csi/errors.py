"""Errors raised by CSI drivers.

A `CsiError` ends the invocation: the guest never sees it, the caller gets the 503 runtime-error text with
the driver's message as detail (engine-spec §2.2, §4.3).
"""


class CsiError(Exception):
    """A CSI driver failed; `str(error)` is the message shown to the caller."""


NO_INFERENCE = (
    "No inference backend configured. The Kernel is running without inference capabilities. To enable "
    "inference capabilities, please ask your operator to configure the Inference URL in the Kernel "
    "configuration."
)

OPENAI_NOT_SUPPORTED = (
    "Inference backend is currently configured to an OpenAI compatible one. For this, we only support chat "
    "requests. For other request types, please ask your operator to configure the inference backend to use "
    "the Aleph Alpha inference backend."
)


class NotImplementedCsiError(CsiError):
    """A CSI function this engine does not provide yet."""

    def __init__(self, function: str) -> None:
        super().__init__(f"The CSI function `{function}` is not supported by this engine yet.")


class CsiRefusal(CsiError):
    """A call the engine refuses on purpose (policy, budget): ends the invocation with `status` and exactly
    this text, not the 503 runtime-error text (docs/governance.md)."""

    status = 403
    kind = "refused"

    def __init__(self, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.headers = dict(headers or {})
