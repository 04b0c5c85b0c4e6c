"""The tables of the configuration: `[openai-inference]`, `[documents]`, `[evaluations]` and one
`[namespaces.<name>]` each with its `policy` and `limits`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ByteSize, ConfigDict, Field, SecretStr, field_validator, model_validator

from skill_engine.config.values import (
    MIN_SKILL_MEMORY,
    CommaList,
    Duration,
    NameList,
    kebab_to_snake,
)


class OpenAIInferenceConfig(BaseModel):
    """Secrets in configuration are `SecretStr`: no repr, log line or error text shows them."""

    model_config = ConfigDict(extra="ignore")
    url: str
    token: SecretStr


class DocumentsConfig(BaseModel):
    """`[documents]`: the embedded document index used when no `document-index-url` is set."""

    model_config = ConfigDict(extra="ignore")
    directory: Path | None = None
    admin_token: SecretStr | None = None

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value


class PolicyConfig(BaseModel):
    """`[namespaces.<ns>.policy]` (docs/governance.md): allow-lists of names or glob patterns; an absent
    list allows everything of its kind, an empty one nothing. Operator configuration only."""

    model_config = ConfigDict(extra="ignore")
    models: NameList = None
    collections: NameList = None
    mcp_servers: NameList = None
    tools: NameList = None

    @model_validator(mode="before")
    @classmethod
    def _snake_keys(cls, data: Any) -> Any:
        return kebab_to_snake(data)


class LimitsConfig(BaseModel):
    """`[namespaces.<ns>.limits]` (docs/governance.md): each unset limit falls back to the global one."""

    model_config = ConfigDict(extra="ignore")
    timeout: Duration | None = None
    memory: ByteSize | None = None
    max_concurrent: int | None = Field(default=None, ge=1)
    max_queued: int | None = Field(default=None, ge=0)
    weight: float = Field(default=1.0, gt=0)
    cpu_time: Duration | None = None
    tokens_per_minute: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _snake_keys(cls, data: Any) -> Any:
        data = kebab_to_snake(data)
        if isinstance(data, dict):
            return {k: (None if v == "" else v) for k, v in data.items()}
        return data

    @field_validator("memory")
    @classmethod
    def _enough_memory(cls, value: ByteSize | None) -> ByteSize | None:
        if value is not None and value < MIN_SKILL_MEMORY:
            raise ValueError("must be at least 32MiB: a Python skill starts with ~19 MiB of linear memory")
        return value


class EvaluationsConfig(BaseModel):
    """`[evaluations]`: where datasets and runs are stored, and the bounds of uploads (docs/evaluation.md)."""

    model_config = ConfigDict(extra="ignore")
    database_url: SecretStr | None = None
    """PostgreSQL (`postgresql://user:pass@host/db`) shared by a fleet; unset: SQLite in `directory`."""
    directory: Path | None = None
    max_dataset_bytes: ByteSize = ByteSize(20 * 1024 * 1024)
    max_examples: int = Field(default=10_000, ge=1)
    max_concurrency: int = Field(default=32, ge=1)

    @field_validator("database_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value


class NamespaceConfig(BaseModel):
    """One `[namespaces.<name>]` table; which shape it is follows from the keys present (§3.3)."""

    model_config = ConfigDict(extra="ignore")
    directory: Path | None = None
    config_url: str | None = None
    config_access_token: SecretStr | None = None
    registry: str | None = None
    base_repository: str | None = None
    registry_user: str | None = None
    registry_password: SecretStr | None = None
    # Token realms (besides the registry's own host and port) that may receive the registry credentials,
    # as `host[:port]`; HTTPS only (docs/security.md, "Credentials").
    registry_token_realms: CommaList = Field(default_factory=list)
    path: Path | None = None
    skills: list[Any] | None = None
    mcp_servers: list[str] = Field(default_factory=list)
    # Which of `mcp_servers` receive the caller's bearer token (docs/mcp.md); none by default.
    mcp_forward_token: list[str] = Field(default_factory=list)
    native_tools: list[str] = Field(default_factory=list)
    policy: PolicyConfig | None = None
    limits: LimitsConfig = Field(default_factory=LimitsConfig)

    @model_validator(mode="after")
    def _one_shape(self) -> NamespaceConfig:
        """Which keys make a shape; the skill entries and native tools are checked where sources are made
        (`skills.sources.check_namespaces`)."""
        if self.config_url is not None:
            scheme = self.config_url.partition("://")[0] if "://" in self.config_url else self.config_url
            if scheme.lower() not in ("http", "https", "file"):
                raise ValueError(f"Unsupported URL scheme: {scheme}")
        elif self.directory is None and self.skills is None:
            raise ValueError("a namespace needs `config-url`, `directory` or `skills` (engine-spec §3.3)")
        if self.directory is None and not self.registry and self.path is None:
            raise ValueError(
                "`config-url` and `skills` namespaces need a `registry` or a `path` to load from"
            )
        return self
