"""The console's evaluation pages in Debian's Chromium: upload a dataset, start a run from the form and
watch it finish, read its summary and results, and compare two versions with the regressions listed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.test_evaluation import EXAMPLES, ndjson
from tests.support.engine import EngineProcess, WarmUp, engine_with_skills, running
from tests.support.openai_server import OpenAIServer
from tests.support.skills import build_skill

pytestmark = pytest.mark.timeout(900)
EXACT = '[{"type": "exact_match", "field": "value"}]'


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, compiled_cache: Path, openai: tuple[OpenAIServer, str]
) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("console-evaluations")
    skills = {"calculator": build_skill("calculator"), "calculator-v2": build_skill("calculator_v2")}
    env = {
        "OPENAI_INFERENCE__URL": openai[1],
        "OPENAI_INFERENCE__TOKEN": "tok",
        "WASMTIME_CACHE_DIR": str(compiled_cache),
        "EVALUATIONS__DIRECTORY": str(workdir / "data"),
    }
    warm = [WarmUp.run("acc", name, {"a": 1, "b": 1}) for name in skills]  # compiled before the browser looks
    with running(engine_with_skills(workdir, skills, env, namespace="ACC"), warm) as process:
        yield process


def test_a_dataset_uploaded_and_evaluated_from_the_console(
    engine: EngineProcess, page: Any, tmp_path: Path
) -> None:
    data = tmp_path / "calc.jsonl"
    data.write_bytes(ndjson(EXAMPLES))
    page.goto(f"{engine.url}/ui#/evaluations")
    page.get_by_label("Name", exact=True).fill("six sums")
    page.get_by_label("File (JSON lines or CSV)").set_input_files(str(data))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_contain_text("Dataset “six sums” stored with 6 examples.")
    expect(page.locator("#datasets")).to_contain_text("six sums")

    page.get_by_label("Skill", exact=True).select_option("acc/calculator")
    page.get_by_label("Dataset", exact=True).select_option(label="six sums (6)")
    page.get_by_label("Evaluators (JSON list)").fill(EXACT)
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#run-status")).to_have_text("done", timeout=120_000)
    expect(page.locator("#run-progress")).to_have_text("6/6")
    summary = page.locator("table.summary tbody tr")
    expect(summary).to_have_count(1)
    expect(summary.locator("td")).to_have_text(["exact_match", "0.800", "0.667", "5"])
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(6)
    expect(rows.nth(3)).to_contain_text("ZeroDivisionError")
    expect(rows.nth(4)).to_contain_text("exact_match 0.000 ✗")


def test_two_versions_compared_in_the_console(engine: EngineProcess, page: Any) -> None:
    client = httpx.Client(base_url=engine.url, timeout=60)
    dataset = client.post(
        "/v1/datasets",
        params={"name": "compare"},
        content=ndjson(EXAMPLES),
        headers={"content-type": "application/x-ndjson"},
    ).json()["id"]
    runs = []
    for skill in ("calculator", "calculator-v2"):
        body = {"namespace": "acc", "skill": skill, "dataset": dataset, "evaluators": json.loads(EXACT)}
        runs.append(client.post("/v1/evaluations", json=body).json()["id"])
    deadline = time.monotonic() + 120
    while any(client.get(f"/v1/evaluations/{r}").json()["status"] == "running" for r in runs):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    page.goto(f"{engine.url}/ui#/evaluations")
    for run_id in runs:  # baseline first, then the candidate
        page.get_by_label(f"select run {run_id}").check()
    page.get_by_role("button", name="Compare the two selected runs").click()
    regressions = page.locator("table.regressions tbody tr")
    expect(regressions).to_have_count(2)
    expect(regressions.nth(0).locator("td")).to_have_text(
        ["1", '{"a":2,"b":3,"op":"mul"}', "1.000", "0.000", "-1.000"]
    )
    expect(page.locator("table.improvements tbody tr")).to_have_count(1)
    expect(page.locator("#comparison")).to_contain_text("Errors -1")
