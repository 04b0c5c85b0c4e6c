"""Defaults and parsing of the security and resilience settings (docs/security.md)."""

from __future__ import annotations

import pytest

from skill_engine.config import Settings, default_concurrency, memory_available


def test_default_concurrency_follows_memory() -> None:
    memory = memory_available()
    assert memory is not None and memory > 0
    # Half the memory at 8 MiB per in-flight invocation (bench/concurrency.py measures ~2 MiB), 4..2048.
    assert default_concurrency() == max(4, min(2048, memory // 2 // (8 * 1024 * 1024)))
    assert Settings().max_concurrent_skills == default_concurrency()


def test_security_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_SKILLS", "3")
    monkeypatch.setenv("MAX_CONCURRENT_SKILLS_PER_NAMESPACE", "")
    monkeypatch.setenv("SHUTDOWN_GRACE", "1m")
    monkeypatch.setenv("AUTHORIZATION_CACHE_TTL", "0")
    monkeypatch.setenv("SKILL_QUEUE_TIMEOUT", "500ms")
    monkeypatch.setenv("SKILL_OUTPUT_LIMIT", "1MiB")
    settings = Settings()
    assert settings.max_concurrent_skills == 3
    assert settings.max_concurrent_skills_per_namespace is None
    assert settings.shutdown_grace == 60.0
    assert settings.authorization_cache_ttl == 0.0
    assert settings.skill_queue_timeout == 0.5
    assert int(settings.skill_output_limit) == 1024 * 1024
