"""Browser fixtures of the console tests: one Chromium per module, a fresh page per test, a screenshot in
`test-artifacts/` when a test fails."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import LOOPBACK, Outside, artifact_path, failed, launch


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture
def outside() -> Outside:
    return Outside()


@pytest.fixture
def page(browser: Any, outside: Outside, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})

    def guard(route: Any) -> None:
        if LOOPBACK.match(route.request.url) or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.urls.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
        assert not errors, f"JavaScript errors: {errors}"
    finally:
        if failed(request):
            page.screenshot(path=str(artifact_path(request.node.nodeid)), full_page=True)
        context.close()
