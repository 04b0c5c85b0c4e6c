"""Values that configuration keys hold: namespace names, durations, ratios and lists from env or TOML."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_settings import NoDecode

MIN_SKILL_MEMORY = 32 * 1024 * 1024

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


def kebab_to_snake(data: Any) -> Any:
    """TOML spells keys kebab-case, the environment snake_case; models see snake_case."""
    if not isinstance(data, dict):
        return data
    return {str(k).replace("-", "_").lower(): v for k, v in data.items()}


def _json_list(value: Any) -> Any:
    """Lists from the environment arrive as JSON text (`'["llama-*"]'`)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(f"expected a JSON list of names, e.g. '[\"llama-*\"]', got {value!r}") from None
    return value


NameList = Annotated[list[str] | None, BeforeValidator(_json_list)]
