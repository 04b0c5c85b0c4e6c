"""Configuration sources, precedence and validation (engine-spec §3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from skill_engine.config import ConfigError, load_settings, parse_duration


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("NAMESPACES__", "OPENAI_", "KERNEL_", "SKILL_", "NAMESPACE_", "INFERENCE")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults_serve_a_dev_namespace_from_skills() -> None:
    settings = load_settings()
    assert settings.kernel_address == "0.0.0.0:8081"
    assert settings.namespace_update_interval == 10.0
    assert settings.skill_timeout == 600.0
    assert int(settings.skill_memory_limit) == 512 * 1024 * 1024
    namespaces = settings.effective_namespaces()
    assert list(namespaces) == ["dev"]
    assert namespaces["dev"].directory == Path("skills")


def test_env_nesting_with_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMESPACES__MY_TEAM__DIRECTORY", "team-skills")
    monkeypatch.setenv("OPENAI_INFERENCE__URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("OPENAI_INFERENCE__TOKEN", "t0k")
    monkeypatch.setenv("NAMESPACE_UPDATE_INTERVAL", "1m30s")
    settings = load_settings()
    assert settings.namespaces["my-team"].directory == Path("team-skills")
    assert settings.effective_namespaces() == settings.namespaces  # no implicit dev namespace
    assert settings.openai_inference is not None
    assert settings.openai_inference.token.get_secret_value() == "t0k"
    assert settings.namespace_update_interval == 90.0


def test_toml_kebab_case_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'kernel-address = "127.0.0.1:9999"\n'
        'namespace-update-interval = "PT5S"\n'
        "[namespaces.my-team]\n"
        'directory = "from-file"\n'
        'native-tools = ["add"]\n'
    )
    monkeypatch.setenv("KERNEL_ADDRESS", "127.0.0.1:7777")
    monkeypatch.setenv("NAMESPACES__MY_TEAM__DIRECTORY", "from-env")
    settings = load_settings()
    assert settings.kernel_address == "127.0.0.1:7777"
    assert settings.namespace_update_interval == 5.0
    team = settings.namespaces["my-team"]
    assert team.directory == Path("from-env")
    assert team.native_tools == ["add"]  # file and env each provide part of a namespace


def test_dotenv_does_not_override_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SKILL_TIMEOUT=5s\nKERNEL_ADDRESS=127.0.0.1:1111\n")
    monkeypatch.setenv("KERNEL_ADDRESS", "127.0.0.1:2222")
    settings = load_settings()
    assert settings.skill_timeout == 5.0
    assert settings.kernel_address == "127.0.0.1:2222"


def test_empty_urls_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERENCE_URL", "")
    assert load_settings().inference_url is None


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("SKILL_MEMORY_LIMIT", "16MiB", "SKILL_MEMORY_LIMIT"),
        ("SKILL_TIMEOUT", "later", "SKILL_TIMEOUT"),
        ("KERNEL_ADDRESS", "localhost", "KERNEL_ADDRESS"),
        ("NAMESPACES__BAD_NAME_-__DIRECTORY", "x", "Invalid namespace"),
    ],
)
def test_invalid_values_name_the_key(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, named: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("PT10S", 10), ("PT1M", 60), ("2", 2)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten seconds", "10x", "-5s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
