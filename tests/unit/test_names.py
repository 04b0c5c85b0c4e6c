"""Names from team files are data (skills/names.py), credentials go only where they belong (oci_auth.py),
and configured secrets never show in a repr."""

from __future__ import annotations

import pytest

from skill_engine.config import Settings
from skill_engine.skills.description import ProgrammableSkill, Refused, parse_description
from skill_engine.skills.names import is_valid_name, is_valid_tag
from skill_engine.skills.oci_auth import realm_refusal

HOSTILE_NAMES = [
    "../other-team/skill",
    "a/../../b",
    "x?y",
    "%2e%2e",
    "/etc/passwd",
    "nul\x00byte",
    "a" * 129,
    "..",
    ".",
    "",
    "Upper",
    "a#b",
    "a b",
    "-a",
    "a-",
    "a..b",
    "C:\\windows",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_refused(name: str) -> None:
    assert not is_valid_name(name)


@pytest.mark.parametrize("name", ["haiku", "csi_text", "wit-v0.2", "a" * 128, "0", "a.b_c-d"])
def test_ordinary_names_pass(name: str) -> None:
    assert is_valid_name(name)


@pytest.mark.parametrize("tag", ["latest", "v1", "1.0.0-rc_1", "_x", "A" * 128])
def test_ordinary_tags_pass(tag: str) -> None:
    assert is_valid_tag(tag)


@pytest.mark.parametrize("tag", ["", "../x", "v1?x=1", ".hidden", "-x", "a" * 129, "a/b", "v\x00"])
def test_hostile_tags_are_refused(tag: str) -> None:
    assert not is_valid_tag(tag)


def test_a_refused_entry_leaves_the_others_served() -> None:
    description = parse_description(
        'skills = [{name = "good"}, {name = "../other-team/skill"}, {name = "x", tag = "v1?y"},'
        ' {name = "nul\\u0000"}]\n'
    )
    assert description.skills == (ProgrammableSkill("good", "latest"),)
    assert [entry.name for entry in description.refused] == ["../other-team/skill", "x", "nul\x00"]
    first, tag, nul = description.refused
    assert first == Refused(
        "../other-team/skill",
        'the skill name "../other-team/skill" was refused: a skill name must match '
        "`[a-z0-9]+([._-][a-z0-9]+)*` and have at most 128 characters",
    )
    assert tag.reason.startswith('the tag "v1?y" of skill "x" was refused')
    assert '"nul\\u0000"' in nul.reason  # escaped, never a raw NUL in a log line


def test_an_over_long_name_is_cut_in_the_message() -> None:
    description = parse_description(f'skills = [{{name = "{"a" * 5000}"}}]\n')
    [refused] = description.refused
    assert "(5000 characters)" in refused.reason and len(refused.reason) < 300


REGISTRY = "https://registry.example:5000"


@pytest.mark.parametrize(
    ("realm", "listed", "allowed"),
    [
        ("https://registry.example:5000/token", (), True),
        ("https://REGISTRY.example:5000/token", (), True),
        ("http://registry.example:5000/token", (), False),  # not HTTPS
        ("https://registry.example:5001/token", (), False),  # another port
        ("https://registry.example/token", (), False),  # another port (443)
        ("https://evil.example/token", (), False),
        ("https://auth.example/token", ("auth.example",), True),
        ("https://auth.example:8443/token", ("auth.example",), False),
        ("https://auth.example:8443/token", ("auth.example:8443",), True),
        ("https://auth.example/token", ("https://auth.example",), True),
        ("http://auth.example/token", ("auth.example",), False),  # listed, but not HTTPS
        ("not a url at all", (), False),
    ],
)
def test_token_realms(realm: str, listed: tuple[str, ...], allowed: bool) -> None:
    assert (realm_refusal(realm, REGISTRY, listed) is None) is allowed


def test_configured_secrets_never_show_in_a_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "NAMESPACES__TEAM__CONFIG_URL": "https://config.example/ns.toml",
        "NAMESPACES__TEAM__CONFIG_ACCESS_TOKEN": "secret-config-token",
        "NAMESPACES__TEAM__REGISTRY": "registry.example",
        "NAMESPACES__TEAM__REGISTRY_USER": "bob",
        "NAMESPACES__TEAM__REGISTRY_PASSWORD": "secret-registry-password",
        "NAMESPACES__TEAM__REGISTRY_TOKEN_REALMS": "auth.example, auth2.example:8443",
        "OPENAI_INFERENCE__URL": "https://openai.example/v1",
        "OPENAI_INFERENCE__TOKEN": "secret-openai-token",
        "DOCUMENTS__ADMIN_TOKEN": "secret-admin-token",
    }
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    team = settings.namespaces["team"]
    assert team.registry_token_realms == ["auth.example", "auth2.example:8443"]
    text = f"{settings!r} {settings} {settings.model_dump()} {team!r}"
    for secret in (
        "secret-config-token",
        "secret-registry-password",
        "secret-openai-token",
        "secret-admin-token",
    ):
        assert secret not in text
