"""Configuration compatible with PhariaEngine (engine-spec §3).

Sources, later ones win: `config.toml` in the working directory (kebab-case keys), `.env` in the working
directory (never overrides the real environment), then environment variables where `__` separates nesting
levels (`NAMESPACES__MY_TEAM__DIRECTORY` ⇒ `namespaces.my-team.directory`). Unknown keys are ignored.
"""

from __future__ import annotations

import json
import math
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def invalid_namespace_text(name: str) -> str:
    return (
        f"Invalid namespace `{name}`. Namespaces must be between 1 and 64 characters long and must follow "
        "the pattern `^[a-z0-9]+(-[a-z0-9]+)*$`"
    )


def is_valid_namespace(name: str) -> bool:
    return 1 <= len(name) <= 64 and NAMESPACE_PATTERN.match(name) is not None


SAMPLING_RATIO_ERROR = "otel_sampling_ratio must be between 0.0 and 1.0 inclusive"


def validate_sampling_ratio(ratio: float) -> float:
    if not 0.0 <= ratio <= 1.0:  # NaN fails too
        raise ValueError(SAMPLING_RATIO_ERROR)
    return ratio


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from `10s`, `1m30s`, `500ms`, `1h`, ISO-8601 `PT10S`, or a plain number of seconds."""
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        text = str(value).strip()
        iso = _ISO_DURATION.match(text.upper())
        if iso and text.upper() not in ("P", "PT"):
            days, hours, minutes, secs = (float(g) if g else 0.0 for g in iso.groups())
            seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
        else:
            compact = text.replace(" ", "")
            parts = _DURATION_PART.findall(compact)
            if not parts or "".join(n + u for n, u in parts) != compact:
                try:
                    seconds = float(compact)
                except ValueError:
                    raise ValueError(
                        f"invalid duration {text!r}: use e.g. 10s, 1m30s, 500ms, 1h or PT10S"
                    ) from None
            else:
                seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds < 0:
        raise ValueError("duration must be non-negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _comma_list(value: Any) -> Any:
    """`a,b` from an environment variable, or a TOML/JSON list."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            return json.loads(stripped)
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_comma_list)]


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


def _json_list(value: Any) -> Any:
    """Lists from the environment arrive as JSON text (`'["llama-*"]'`)."""
    if isinstance(value, str):
        import json

        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(f"expected a JSON list of names, e.g. '[\"llama-*\"]', got {value!r}") from None
    return value


NameList = Annotated[list[str] | None, BeforeValidator(_json_list)]


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
        return _kebab_to_snake(data)


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
        data = _kebab_to_snake(data)
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


CONFIG_FILE = Path("config.toml")
MIN_SKILL_MEMORY = 32 * 1024 * 1024


def _kebab_to_snake(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    return {str(k).replace("-", "_").lower(): v for k, v in data.items()}


def normalize(data: dict[str, Any]) -> dict[str, Any]:
    """Brings keys from TOML (kebab-case) and env (snake_case) to one form before sources are merged."""
    top: dict[str, Any] = _kebab_to_snake(data)
    namespaces = top.get("namespaces")
    if isinstance(namespaces, dict):
        top["namespaces"] = {
            str(name).replace("_", "-").lower(): _kebab_to_snake(value) for name, value in namespaces.items()
        }
    if isinstance(top.get("openai_inference"), dict):
        top["openai_inference"] = _kebab_to_snake(top["openai_inference"])
    for section in ("documents", "evaluations"):
        if isinstance(top.get(section), dict):
            top[section] = _kebab_to_snake(top[section])
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
    """Compile new or changed skills when the namespace watcher sees them, not at their first request."""
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


CONCURRENCY_MEMORY = 8 * 1024 * 1024
"""Memory budgeted per concurrent invocation for the default cap. Measured (bench/concurrency.py): an SDK
Python skill waiting on inference costs ~2 MiB of private memory (PSS), its untouched memory image is
shared copy-on-write with the compiled artifact; 8 MiB leaves room for skills that allocate more."""
CONCURRENCY_SHARE = 0.5
"""Share of the memory limit the default cap may spend on in-flight invocations (the rest: cached
skills, the process, bursts)."""
CONCURRENCY_MAX = 2048
"""Upper bound of the default: one thread each; beyond that, add workers or engines."""


def memory_available() -> int | None:
    """The container's memory limit (cgroup v2/v1) or the machine's physical memory, in bytes."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def usable_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup CPU quota (v2 or v1), at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _cgroup_cpu_quota() -> float | None:
    """CPUs granted by the cgroup quota (`cpu.max` "200000 100000" → 2.0), None when unlimited or unknown."""
    try:
        quota, _, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:3]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text().strip()
        period = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text().strip()
        if int(quota) > 0:
            return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    return None


def default_concurrency() -> int:
    """MAX_CONCURRENT_SKILLS when unset: half the memory at 8 MiB per invocation, between 4 and 2048."""
    memory = memory_available()
    if memory is None:
        return 64
    return max(4, min(CONCURRENCY_MAX, int(memory * CONCURRENCY_SHARE) // CONCURRENCY_MEMORY))


class ConfigError(Exception):
    """Start-up configuration is invalid; the message names the offending key."""


def config_problem(location: list[str], message: str) -> str:
    """One line of a ConfigError: the key's env and TOML spellings, then what is wrong."""
    env_name = "__".join(part.replace("-", "_").upper() for part in location)
    toml_name = ".".join(part.replace("_", "-") for part in location)
    return f"{env_name} ({toml_name}): {message}"


def config_error(problems: list[str]) -> ConfigError:
    return ConfigError("Invalid configuration:\n  " + "\n  ".join(problems))


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as e:
        problems = [
            config_problem([str(part) for part in error["loc"]], error["msg"]) for error in e.errors()
        ]
        raise config_error(problems) from None
