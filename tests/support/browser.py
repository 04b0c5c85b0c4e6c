"""Headless Chromium from Debian (`/usr/bin/chromium`, installed by `make test-browser`) driven by Playwright.

Playwright's own browser downloads are never used. Every request to anything but the loopback engine is
aborted and remembered, so a page that needs the internet fails its test instead of passing by luck.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SKILL_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SKILL_TEST_ARTIFACTS", ROOT / "test-artifacts"))
LOOPBACK = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost)(:\d+)?/")


@dataclass
class Outside:
    """Requests a page tried to send outside the engine (aborted)."""

    urls: list[str] = field(default_factory=list)


def chromium_available() -> bool:
    return shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists()


def screenshot_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[-150:] + ".png"


def artifact_path(nodeid: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / screenshot_name(nodeid)


def failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "rep_call", None)
    return bool(report is not None and report.failed)


def launch() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not chromium_available():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make test-browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
