"""The author CLI (`skill-engine inspect`, `run`, `dev`) as a user runs it: a real process, SDK-built
skills, the loopback OpenAI-compatible inference server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.openai_server import OpenAIServer
from tests.support.servers import free_port
from tests.support.skills import WIT, build_raw_skill, unstable_copy

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def cli_env(
    tmp_path_factory: pytest.TempPathFactory, compiled_cache: Path, openai: tuple[OpenAIServer, str]
) -> dict[str, str]:
    _, url = openai
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NAMESPACES__", "OPENAI_"))}
    env.update(
        {
            "OPENAI_INFERENCE__URL": url,
            "OPENAI_INFERENCE__TOKEN": "tok",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
        }
    )
    env["HOME_FOR_TEST"] = str(tmp_path_factory.mktemp("cli"))
    return env


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skill_engine", *args],
        env=env,
        cwd=env["HOME_FOR_TEST"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


def inspect(env: dict[str, str], wasm: Path) -> dict[str, object]:
    result = cli(env, "inspect", str(wasm), "--json")
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_inspect_a_0_3_function_skill(cli_env: dict[str, str], probe_wasm: Path) -> None:
    report = inspect(cli_env, probe_wasm)
    assert str(report["world"]).startswith("pharia:skill/skill-handler@0.3.")
    assert report["kind"] == "function" and report["loads"] is True and report["error"] is None
    assert report["description"] == "A probe skill for the engine's tests."
    schema = report["input_schema"]
    assert isinstance(schema, dict) and "mode" in schema["properties"]
    assert report["size"] == probe_wasm.stat().st_size
    imports = report["imports"]
    assert isinstance(imports, list)
    assert any(str(name).startswith("pharia:skill/inference@0.3.") for name in imports)
    text = cli(cli_env, "inspect", str(probe_wasm))
    assert text.returncode == 0
    assert "skill-handler@0.3" in text.stdout and "Loads here" in text.stdout and "yes" in text.stdout


def test_inspect_a_message_stream_skill(cli_env: dict[str, str], streamer_wasm: Path) -> None:
    report = inspect(cli_env, streamer_wasm)
    assert str(report["world"]).startswith("pharia:skill/message-stream@0.3.")
    assert report["kind"] == "message_stream" and report["loads"] is True


def test_inspect_the_0_2_and_0_4_lines(cli_env: dict[str, str]) -> None:
    v02 = inspect(cli_env, build_raw_skill("wit_v0_2", WIT / "skill@0.2", "skill"))
    assert str(v02["world"]).startswith("pharia:skill/skill-handler@0.2.")
    assert v02["loads"] is True and v02["input_schema"] is None  # 0.2 has no metadata export
    v04 = inspect(cli_env, build_raw_skill("wit_v0_4", WIT / "skill@0.4", "skill"))
    assert str(v04["world"]).startswith("pharia:skill/skill-handler@0.4.") and v04["loads"] is True


def test_inspect_the_beta_0_5_line_says_whether_it_loads(cli_env: dict[str, str]) -> None:
    wasm = build_raw_skill("wit_v0_4", unstable_copy(WIT / "skill@0.4", "0.5.0", "alpha"), "skill", "alpha")
    refused = cli(cli_env, "inspect", str(wasm), "--json")
    assert refused.returncode == 1  # it would not load here: 0.5 is served only with the BETA feature set
    stable = json.loads(refused.stdout)
    assert str(stable["world"]).startswith("pharia:skill/skill-handler@0.5.")
    assert stable["loads"] is False and "PHARIA_AI_FEATURE_SET=BETA" in str(stable["error"])
    beta = inspect({**cli_env, "PHARIA_AI_FEATURE_SET": "BETA"}, wasm)
    assert beta["loads"] is True and beta["error"] is None


def test_inspect_a_file_that_is_not_a_component(cli_env: dict[str, str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"not wasm at all")
    result = cli(cli_env, "inspect", str(junk))
    assert result.returncode == 1
    assert "Error decoding Wasm component" in result.stderr


def test_run_a_function_skill_with_input_as_argument_file_and_stdin(
    cli_env: dict[str, str], probe_wasm: Path, tmp_path: Path
) -> None:
    result = cli(cli_env, "run", str(probe_wasm), '{"mode": "chat", "text": "hi there"}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"result": "echo: hi there"}
    (tmp_path / "input.json").write_text('{"mode": "echo", "payload": [1, 2]}')
    from_file = cli(cli_env, "run", str(probe_wasm), "--input", str(tmp_path / "input.json"))
    assert json.loads(from_file.stdout) == {"result": [1, 2]}
    from_stdin = cli(cli_env, "run", str(probe_wasm), stdin='{"mode": "size", "text": "abc"}')
    assert json.loads(from_stdin.stdout) == {"result": 3}


def test_a_failing_skill_prints_the_engine_error_and_exits_non_zero(
    cli_env: dict[str, str], probe_wasm: Path
) -> None:
    result = cli(cli_env, "run", str(probe_wasm), '{"mode": "raise", "text": "boom"}')
    assert result.returncode == 1
    assert result.stdout == ""
    assert "I never expect to finish: boom" in result.stderr
    bad_input = cli(cli_env, "run", str(probe_wasm), "{nope")
    assert bad_input.returncode == 2 and "The input is not valid JSON" in bad_input.stderr


def test_run_a_message_stream_prints_it_as_it_streams(cli_env: dict[str, str], streamer_wasm: Path) -> None:
    result = cli(cli_env, "run", str(streamer_wasm), '{"mode": "messages", "text": "one two"}')
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'onetwo\n{"note": "first"}\nsecond\n'
    failing = cli(cli_env, "run", str(streamer_wasm), '{"mode": "raise"}')
    assert failing.returncode == 1
    assert failing.stdout == "partial"
    assert "failure mid-stream" in failing.stderr


def test_a_stream_arrives_before_the_skill_ends(cli_env: dict[str, str], streamer_wasm: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "skill_engine", "run", str(streamer_wasm)],
        env=cli_env,
        cwd=cli_env["HOME_FOR_TEST"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write('{"mode": "chat_stream", "model": "endless", "text": "go"}')
    process.stdin.close()
    try:
        assert process.stdout.read(6) == "0 1 2 "  # while the skill is still streaming
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_run_with_trace_prints_the_span_tree(cli_env: dict[str, str], probe_wasm: Path) -> None:
    result = cli(cli_env, "run", str(probe_wasm), '{"mode": "chat", "text": "x"}', "--trace")
    assert result.returncode == 0, result.stderr
    tree = result.stderr
    for expected in ("skill_execution", "load_skill", "chat", "request.model=test-model", "output_tokens=3"):
        assert expected in tree, tree
    assert json.loads(result.stdout) == {"result": "echo: x"}


def test_help_of_each_command(capsys: pytest.CaptureFixture[str]) -> None:
    from skill_engine.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    for command, phrase in (
        ("inspect", "whether this engine would serve it"),
        ("run", "--trace"),
        ("dev", "picking up"),
    ):
        assert command in top
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        assert phrase in " ".join(capsys.readouterr().out.split())


def test_dev_serves_a_directory_and_follows_changes(
    cli_env: dict[str, str], probe_wasm: Path, tmp_path: Path
) -> None:
    skills = tmp_path / "skills"
    skills.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "skill_engine", "dev", str(skills), "--address", f"127.0.0.1:{port}"],
        env=cli_env,
        cwd=cli_env["HOME_FOR_TEST"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        assert f"Skill Console: http://127.0.0.1:{port}/ui\n" in lines
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/v1/skills", timeout=2).json() == []:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        shutil.copy(probe_wasm, skills / "probe.wasm")
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/v1/skills", timeout=2).json() != ["dev/probe"]:
            assert time.monotonic() < deadline, "the new skill was not picked up"
            time.sleep(0.2)
        body = {"mode": "size", "text": "ab"}
        answer = httpx.post(f"{url}/v1/skills/dev/probe/run", json=body, timeout=600)
        assert answer.json() == {"result": 2}
    finally:
        process.terminate()
        process.wait(timeout=30)
