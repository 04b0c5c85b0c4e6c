"""Namespace description files and namespace shapes in the engine's configuration (engine-spec §3.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from skill_engine.config import ConfigError, load_settings
from skill_engine.skills.description import (
    ChatSkill,
    InvalidDescription,
    NamespaceDescription,
    ProgrammableSkill,
    parse_description,
)
from skill_engine.skills.sources import check_namespaces


def test_full_description() -> None:
    description = parse_description(
        """
skills = [
  {name = "haiku", tag = "v1.0.0"},
  {name = "greet"},
  {type = "chat", name = "pluto", version = "1", model = "m", system_prompt = "You are Pluto."},
]
mcp-servers = ["http://localhost:8000/mcp"]
native-tools = ["add", "subtract", "saboteur"]
"""
    )
    assert description == NamespaceDescription(
        (
            ProgrammableSkill("haiku", "v1.0.0"),
            ProgrammableSkill("greet", "latest"),
            ChatSkill("pluto", "1", "m", "You are Pluto."),
        ),
        ("http://localhost:8000/mcp",),
        ("add", "subtract", "saboteur"),
    )


def test_array_of_tables_is_equivalent() -> None:
    text = '[[skills]]\nname = "haiku"\n\n[[skills]]\ntype = "chat"\nname = "c"\nversion = "1"\nmodel = "m"\n'
    text += 'system_prompt = "p"\n'
    assert parse_description(text).skills == (ProgrammableSkill("haiku"), ChatSkill("c", "1", "m", "p"))


def test_chat_entry_missing_a_field_is_a_programmable_skill() -> None:
    text = 'skills = [{type = "chat", name = "pluto", tag = "v2", model = "m"}]'
    assert parse_description(text).skills == (ProgrammableSkill("pluto", "v2"),)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "missing field `skills`"),
        ("skills = [ {", "Invalid initial character"),
        ('skills = [{tag = "v1"}]', "missing field `name`"),
        ('skills = []\nnative-tools = ["teleport"]', "unknown native tool `teleport`"),
        ('skills = "haiku"', "must be an array"),
        ("skills = [1]", "must be a table"),
        ('skills = []\nmcp-servers = "http://x"', "`mcp-servers` must be an array"),
    ],
)
def test_invalid_descriptions(text: str, reason: str) -> None:
    with pytest.raises(InvalidDescription, match=reason):
        parse_description(text)


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("NAMESPACES__", "MEMORY_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("clean")
def test_team_owned_namespace_from_env_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "CONFIG_URL": "https://example.com/ns.toml",
        "CONFIG_ACCESS_TOKEN": "t",
        "REGISTRY": "registry.example.com",
        "BASE_REPOSITORY": "team/skills",
        "REGISTRY_USER": "dummy",
        "REGISTRY_PASSWORD": "p",
        "PATH": "local",
    }.items():
        monkeypatch.setenv(f"NAMESPACES__MY_TEAM__{key}", value)
    team = load_settings().namespaces["my-team"]
    assert team.config_url == "https://example.com/ns.toml"
    assert team.config_access_token is not None and team.config_access_token.get_secret_value() == "t"
    assert (team.registry, team.base_repository) == ("registry.example.com", "team/skills")
    assert team.registry_password is not None and team.registry_password.get_secret_value() == "p"
    assert (team.registry_user, team.path) == ("dummy", Path("local"))


@pytest.mark.usefixtures("clean")
def test_in_place_skills_from_toml(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[namespaces.inline]\npath = "skills"\nskills = [{name = "a"}, {name = "b", tag = "v2"}]\n'
        'mcp-servers = ["http://m"]\n'
    )
    inline = load_settings().namespaces["inline"]
    assert inline.skills == [{"name": "a"}, {"name": "b", "tag": "v2"}]
    assert inline.mcp_servers == ["http://m"]


@pytest.mark.usefixtures("clean")
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CONFIG_URL": "ftp://example.com/ns.toml", "PATH": "x"}, "Unsupported URL scheme: ftp"),
        ({"CONFIG_URL": "file://ns.toml"}, "need a `registry` or a `path`"),
        ({"REGISTRY": "r.example.com"}, "needs `config-url`, `directory` or `skills`"),
        ({"DIRECTORY": "skills", "NATIVE_TOOLS": '["teleport"]'}, "unknown native tool"),
    ],
)
def test_invalid_namespace_shapes_stop_start_up(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(f"NAMESPACES__MY_TEAM__{key}", value)
    with pytest.raises(ConfigError, match=message):
        check_namespaces(
            load_settings().namespaces
        )  # key shapes in config/sections.py, entries where sources are made


@pytest.mark.usefixtures("clean")
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, 1024**3),
        ({"MEMORY_LIMIT": "8GiB"}, 2 * 1024**3),
        ({"MEMORY_LIMIT": "8GiB", "MEMORY_REQUEST": "480MiB"}, 120 * 1024**2),
    ],
)
def test_skill_cache_budget(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: int) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert load_settings().skill_cache_bytes == expected
