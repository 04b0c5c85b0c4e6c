"""Configuration compatible with PhariaEngine (engine-spec §3).

Sources, later ones win: `config.toml` in the working directory (kebab-case keys), `.env` in the working
directory (never overrides the real environment), then environment variables where `__` separates nesting
levels (`NAMESPACES__MY_TEAM__DIRECTORY` ⇒ `namespaces.my-team.directory`). Unknown keys are ignored.

A leaf of the engine: nothing here imports another engine module. `values` (what a key holds),
`sections` (the tables), `settings` (all keys and their sources), `capacity` (defaults from the
machine), `errors` (start-up errors).
"""

from skill_engine.config.capacity import default_concurrency, memory_available, usable_cpus
from skill_engine.config.errors import ConfigError, config_error, config_problem
from skill_engine.config.sections import (
    DocumentsConfig,
    EvaluationsConfig,
    LimitsConfig,
    NamespaceConfig,
    OpenAIInferenceConfig,
    PolicyConfig,
)
from skill_engine.config.settings import CONFIG_FILE, Settings, load_settings, normalize
from skill_engine.config.values import (
    MIN_SKILL_MEMORY,
    invalid_namespace_text,
    is_valid_namespace,
    parse_duration,
    validate_sampling_ratio,
)

__all__ = [
    "CONFIG_FILE",
    "MIN_SKILL_MEMORY",
    "ConfigError",
    "DocumentsConfig",
    "EvaluationsConfig",
    "LimitsConfig",
    "NamespaceConfig",
    "OpenAIInferenceConfig",
    "PolicyConfig",
    "Settings",
    "config_error",
    "config_problem",
    "default_concurrency",
    "invalid_namespace_text",
    "is_valid_namespace",
    "load_settings",
    "memory_available",
    "normalize",
    "parse_duration",
    "usable_cpus",
    "validate_sampling_ratio",
]
