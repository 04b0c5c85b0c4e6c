"""Execution errors with PhariaEngine's exact user-facing texts (engine-spec §2.2, §2.3, §5.5).

The runtime and the skill store raise these; the HTTP layer only maps each class to a status code.
"""

from __future__ import annotations


class ExecutionError(Exception):
    """Base class: `message` is the exact text sent to the caller."""

    status = 500
    metric_status = "runtime_error"

    @property
    def message(self) -> str:
        return str(self)


class SkillNotFound(ExecutionError):
    status = 400

    def __init__(self) -> None:
        super().__init__(
            "Sorry, we could not find the skill you requested in its namespace. This can have three causes:"
            "\n\n1. You sent the wrong skill name.\n2. You sent the wrong namespace.\n3. The skill is not "
            "configured in the namespace you requested. You may want to check the namespace configuration."
        )


class UserCodeError(ExecutionError):
    """The guest returned `error::internal` (an exception in the skill's code)."""

    status = 400
    metric_status = "logic_error"

    def __init__(self, detail: str) -> None:
        super().__init__(
            "The skill you called responded with an error. Maybe you should check your input, if it seems "
            "to be correct you may want to contact the skill developer. Error reported by Skill:\n\n" + detail
        )


class InvalidInput(ExecutionError):
    status = 400
    metric_status = "logic_error"

    def __init__(self, detail: str) -> None:
        super().__init__("The skill had trouble interpreting the input:\n\n" + detail)


class IsMessageStream(ExecutionError):
    status = 400
    metric_status = "logic_error"

    def __init__(self) -> None:
        super().__init__(
            "The skill is designed to stream output. Please invoke it via the /message-stream endpoint."
        )


class IsFunction(ExecutionError):
    status = 400
    metric_status = "logic_error"

    def __init__(self) -> None:
        super().__init__(
            "The skill is designed to be executed as a function. Please invoke it via the /run endpoint."
        )


class InvalidOutput(ExecutionError):
    status = 500
    metric_status = "logic_error"

    def __init__(self, detail: str) -> None:
        super().__init__(
            "The skill returned an output the Kernel could not interpret. This hints to a bug in the skill. "
            "Please contact its developer. Caused by: \n\n" + detail
        )


class CsiUseFromMetadata(ExecutionError):
    status = 500

    def __init__(self) -> None:
        super().__init__(
            "The metadata function of the invoked skill is bugged. It is forbidden to invoke any CSI "
            "functions from the metadata function, yet the skill does precisely this."
        )


class MisconfiguredNamespace(ExecutionError):
    status = 500

    def __init__(self, namespace: str, detail: str) -> None:
        super().__init__(
            f"The skill could not be executed to completion, the namespace '{namespace}' is misconfigured. "
            "If you are the developer who configured the skill, you should probably fix this error. If you "
            "are not, there is nothing you can do, until the developer who maintains the list of skills to "
            "be served, fixes this. Original Syntax error:\n\n" + detail
        )


class RuntimeFailure(ExecutionError):
    """Load, compile, registry or CSI failure, trap or timeout: something on our side (503)."""

    status = 503

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            "The skill could not be executed to completion, something in our runtime is currently "
            "unavailable or misconfigured. You should try again later, if the situation persists you may "
            "want to contact the operators. Original error:\n\n" + detail
        )


class SkillLoadError(RuntimeFailure):
    def __init__(self, detail: str) -> None:
        super().__init__("Error loading skill: " + detail)


class Refused(ExecutionError):
    """A CSI call the engine refused on purpose (a namespace policy: 403, a token budget: 429)."""

    metric_status = "logic_error"

    def __init__(
        self, text: str, status: int, headers: dict[str, str] | None = None, kind: str = "refused"
    ) -> None:
        super().__init__(text)
        self.status = status
        self.headers = dict(headers or {})
        self.kind = kind
