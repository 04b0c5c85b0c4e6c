"""`[documents]` configuration and which document driver an engine gets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skill_engine.app import make_documents
from skill_engine.config import load_settings
from skill_engine.csi.documents.embedded import EmbeddedDocuments
from skill_engine.csi.documents.remote import RemoteDocuments


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith(("DOCUMENT", "NAMESPACES__")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_toml_kebab_keys_and_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[documents]\ndirectory = "docs-data"\nadmin-token = "from-toml"\n')
    settings = load_settings()
    assert settings.documents.directory == Path("docs-data")
    assert settings.documents.admin_token is not None
    assert settings.documents.admin_token.get_secret_value() == "from-toml"
    monkeypatch.setenv("DOCUMENTS__ADMIN_TOKEN", "from-env")
    token = load_settings().documents.admin_token
    assert token is not None and token.get_secret_value() == "from-env"
    monkeypatch.setenv("DOCUMENTS__ADMIN_TOKEN", "")
    assert load_settings().documents.admin_token is None


def test_driver_selection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCUMENTS__DIRECTORY", str(tmp_path / "d"))
    embedded = make_documents(load_settings())
    assert isinstance(embedded, EmbeddedDocuments) and embedded.directory == tmp_path / "d"
    monkeypatch.setenv("DOCUMENT_INDEX_URL", "")
    assert isinstance(make_documents(load_settings()), EmbeddedDocuments)
    monkeypatch.setenv("DOCUMENT_INDEX_URL", "http://127.0.0.1:1/")
    remote = make_documents(load_settings())
    assert isinstance(remote, RemoteDocuments) and remote.url == "http://127.0.0.1:1"
