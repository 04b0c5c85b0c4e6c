"""Names of PhariaEngine's native test tools: a constant the namespace parser and the drivers share."""

NATIVE_TOOL_NAMES = ("add", "subtract", "saboteur")
"""PhariaEngine's native tools (all of them enabled in `test-beta`)."""
EXECUTE_PYTHON = "execute_python"
"""The code-execution tool (docs/agents.md), provided by `skill_engine.sandbox`."""
KNOWN_NATIVE_TOOLS = (*NATIVE_TOOL_NAMES, EXECUTE_PYTHON)
"""What `native-tools = [...]` accepts."""
TEST_BETA = "test-beta"
"""The namespace that offers every native tool without configuration."""
