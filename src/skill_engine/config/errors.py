"""Start-up configuration errors: one line per offending key, in both its env and TOML spellings."""

from __future__ import annotations


class ConfigError(Exception):
    """Start-up configuration is invalid; the message names the offending key."""


def config_problem(location: list[str], message: str) -> str:
    """One line of a ConfigError: the key's env and TOML spellings, then what is wrong."""
    env_name = "__".join(part.replace("-", "_").upper() for part in location)
    toml_name = ".".join(part.replace("_", "-") for part in location)
    return f"{env_name} ({toml_name}): {message}"


def config_error(problems: list[str]) -> ConfigError:
    return ConfigError("Invalid configuration:\n  " + "\n  ".join(problems))
