"""Names of PhariaEngine's native test tools: a constant the namespace parser and the drivers share."""

NATIVE_TOOL_NAMES = ("add", "subtract", "saboteur")
TEST_BETA = "test-beta"
"""The namespace that offers every native tool without configuration."""
