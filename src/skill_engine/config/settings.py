"""`Settings`: every key of the engine, merged from `config.toml`, `.env` and the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ByteSize, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from skill_engine.config.capacity import default_concurrency, usable_cpus
from skill_engine.config.errors import config_error, config_problem
from skill_engine.config.sections import (
    DocumentsConfig,
    EvaluationsConfig,
    NamespaceConfig,
    OpenAIInferenceConfig,
    PolicyConfig,
)
from skill_engine.config.values import (
    MIN_SKILL_MEMORY,
    Duration,
    invalid_namespace_text,
    is_valid_namespace,
    kebab_to_snake,
    validate_sampling_ratio,
)

CONFIG_FILE = Path("config.toml")


def normalize(data: dict[str, Any]) -> dict[str, Any]:
    """Brings keys from TOML (kebab-case) and env (snake_case) to one form before sources are merged."""
    top: dict[str, Any] = kebab_to_snake(data)
    namespaces = top.get("namespaces")
    if isinstance(namespaces, dict):
        top["namespaces"] = {
            str(name).replace("_", "-").lower(): kebab_to_snake(value) for name, value in namespaces.items()
        }
    if isinstance(top.get("openai_inference"), dict):
        top["openai_inference"] = kebab_to_snake(top["openai_inference"])
    for section in ("documents", "evaluations"):
        if isinstance(top.get(section), dict):
            top[section] = kebab_to_snake(top[section])
    return top


class _Normalized(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return normalize(dict(self.inner()))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        case_sensitive=False,
    )

    kernel_address: str = "0.0.0.0:8081"
    metrics_address: str = "0.0.0.0:9000"
    pharia_ai_feature_set: str = "1"
    inference_url: str | None = None
    openai_inference: OpenAIInferenceConfig | None = None
    document_index_url: str | None = None
    documents: DocumentsConfig = Field(default_factory=DocumentsConfig)
    evaluations: EvaluationsConfig = Field(default_factory=EvaluationsConfig)
    authorization_url: str | None = None
    namespaces: dict[str, NamespaceConfig] = Field(default_factory=dict)
    namespace_update_interval: Duration = 10.0
    log_level: str = "info"
    log_format: str = "text"
    otel_endpoint: str | None = None
    otel_sampling_ratio: float = 0.1
    otel_gen_ai_content_capture: bool = False
    skill_timeout: Duration = 600.0
    skill_memory_limit: ByteSize = ByteSize(512 * 1024 * 1024)
    max_concurrent_skills: int = Field(default_factory=lambda: default_concurrency(), ge=1)
    # MCP (docs/mcp.md): how often tool lists are refreshed, and the bounds of every MCP call and connect.
    mcp_refresh_interval: Duration = 60.0
    mcp_call_timeout: Duration = 60.0
    mcp_connect_timeout: Duration = 10.0
    wasmtime_cache_dir: Path | None = None
    wasmtime_cache_size_limit: ByteSize = ByteSize(10 * 1024**3)
    # Security and resilience (docs/security.md)
    authorization_cache_ttl: Duration = 5.0
    authorization_timeout: Duration = 10.0
    shutdown_grace: Duration = 30.0
    max_queued_skills: int = Field(default=256, ge=0)
    skill_queue_timeout: Duration = 10.0
    max_concurrent_skills_per_namespace: int | None = Field(default=None, ge=1)
    reserved_skill_slots: int | None = Field(default=None, ge=0)
    """Slots one namespace cannot take while others exist; default 1 per 16 (docs/governance.md)."""
    skill_output_limit: ByteSize = ByteSize(50 * 1024 * 1024)
    max_skill_size: ByteSize = ByteSize(512 * 1024 * 1024)
    """Largest component accepted from a registry or a directory; larger ones are refused unread."""
    memory_request: ByteSize | None = None
    memory_limit: ByteSize | None = None
    # Governance (docs/governance.md): the default policy (CSI over HTTP, namespaces without their own)
    # and the audit trail.
    policy: PolicyConfig | None = None
    audit_log: Path | None = None
    audit_log_max_bytes: ByteSize = ByteSize(100 * 1024 * 1024)
    audit_log_backups: int = Field(default=5, ge=1)
    precompile_skills: bool = True
    """Compile new or changed skills when the namespace watcher sees them, not at their first request."""
    workers: int = Field(default_factory=lambda: usable_cpus(), ge=1)
    """Worker processes serving one port (docs/operating.md); default: the CPUs this process may use."""
    cpu_affinity: Literal["auto", "on", "off"] = "auto"
    """Pin each worker process to a CPU of its own (skill_engine/affinity.py); `auto`: when the engine
    owns its CPUs (as many workers as CPUs it may run on, no lower cgroup quota)."""
    # The HTTP server's own limits and the bounds on work a caller or skill can cause (docs/security.md)
    max_connections: int = Field(default=1024, ge=1)
    request_header_timeout: Duration = 10.0
    request_body_timeout: Duration = 30.0
    max_stuck_skills: int | None = Field(default=None, ge=0)
    """Guests stuck in WASI whose slots are given back; default MAX_CONCURRENT_SKILLS (runtime/stuck.py)."""
    max_input_bytes_in_flight: ByteSize = ByteSize(64 * 1024 * 1024)
    """Skill input bytes being handed to guests at once (runtime/budget.py)."""
    csi_batch_concurrency: int = Field(default=16, ge=1)
    csi_concurrency: int = Field(default=256, ge=1)
    console_executions: int = Field(default=100, ge=0)
    """Executions (with their spans and log lines) the console keeps in memory; 0 records none."""
    # Code execution (docs/agents.md): the `execute_python` native tool's sandbox, per call.
    code_execution_timeout: Duration = 10.0
    code_execution_memory: ByteSize = ByteSize(256 * 1024 * 1024)
    code_execution_output_limit: int = Field(default=64 * 1024, ge=0)
    """Characters of stdout and of stderr each that a program's outcome keeps."""
    code_execution_concurrency: int = Field(default=4, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(env_settings, EnvSettingsSource)
        assert isinstance(dotenv_settings, DotEnvSettingsSource)
        return (
            init_settings,
            _Normalized(settings_cls, env_settings),
            _Normalized(settings_cls, dotenv_settings),
            _Normalized(settings_cls, TomlConfigSettingsSource(settings_cls, toml_file=CONFIG_FILE)),
        )

    @field_validator(
        "inference_url",
        "document_index_url",
        "authorization_url",
        "otel_endpoint",
        "max_concurrent_skills_per_namespace",
        "max_stuck_skills",
        "reserved_skill_slots",
        "audit_log",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("otel_sampling_ratio")
    @classmethod
    def _ratio(cls, value: float) -> float:
        return validate_sampling_ratio(value)

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value.lower() not in ("text", "json"):
            raise ValueError("must be `text` or `json`")
        return value.lower()

    @field_validator("skill_memory_limit", "code_execution_memory")
    @classmethod
    def _enough_memory(cls, value: ByteSize) -> ByteSize:
        if value < MIN_SKILL_MEMORY:
            raise ValueError("must be at least 32MiB: a Python skill starts with ~19 MiB of linear memory")
        return value

    @field_validator("namespaces")
    @classmethod
    def _valid_names(cls, value: dict[str, NamespaceConfig]) -> dict[str, NamespaceConfig]:
        for name in value:
            if not is_valid_namespace(name):
                raise ValueError(invalid_namespace_text(name))
        return value

    @field_validator("kernel_address", "metrics_address")
    @classmethod
    def _socket_address(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        return value

    def effective_namespaces(self) -> dict[str, NamespaceConfig]:
        """Only when no namespace is configured anywhere: a `dev` namespace watching `./skills`."""
        if self.namespaces:
            return self.namespaces
        return {"dev": NamespaceConfig(directory=Path("skills"))}

    @property
    def skill_cache_bytes(self) -> int:
        """Component bytes kept loaded: (MEMORY_REQUEST ?? MEMORY_LIMIT ?? 4 GiB) / 4 (engine-spec §1.4)."""
        memory = self.memory_request or self.memory_limit or 4 * 1024**3
        return int(memory) // 4

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.kernel_address.rpartition(":")
        return host.strip("[]"), int(port)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as e:
        problems = [
            config_problem([str(part) for part in error["loc"]], error["msg"]) for error in e.errors()
        ]
        raise config_error(problems) from None
