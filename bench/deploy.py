"""Deploy latency: from the namespace-file change to the first successful response, with and without
precompile on deploy.

A real registry (Debian's docker-registry, plain HTTP on loopback) holds the probe skill, pushed with
`oras`; a team namespace file (`file://`) starts empty and the benchmark adds the skill to it. Each run
uses a fresh compiled-artifact directory and a component made unique by a custom section, so every run
compiles. Two client behaviours:

- *polling*: the client calls the skill every 100 ms from the moment the file changes;
- *later*: the first call comes `--delay` seconds after the change (a deploy, then traffic).

    .venv/bin/python -m bench.deploy [--interval 1s] [--delay 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from tests.support.engine import EngineProcess
from tests.support.registry import Registry
from tests.support.skills import build_skill


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def unique_component(wasm: bytes) -> bytes:
    """The same component plus a custom section: new bytes (so a new compile), same behaviour."""
    name = b"bench-nonce"
    payload = _leb128(len(name)) + name + uuid.uuid4().bytes
    return wasm + b"\x00" + _leb128(len(payload)) + payload


def one_run(
    registry: Registry, probe: bytes, precompile: bool, delay: float | None, interval: str
) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="skill-engine-deploy-"))
    wasm = workdir / "probe.wasm"
    wasm.write_bytes(unique_component(probe))
    tag = uuid.uuid4().hex[:12]
    registry.oras_push(wasm, f"bench/probe:{tag}")
    namespace_file = workdir / "namespace.toml"
    namespace_file.write_text("skills = []\n")
    engine = EngineProcess(
        workdir,
        {
            "NAMESPACES__BENCH__CONFIG_URL": f"file://{namespace_file}",
            "NAMESPACES__BENCH__REGISTRY": f"http://{registry.host}",
            "NAMESPACES__BENCH__BASE_REPOSITORY": "bench",
            "NAMESPACE_UPDATE_INTERVAL": interval,
            "PRECOMPILE_SKILLS": str(precompile).lower(),
            "WASMTIME_CACHE_DIR": str(workdir / "compiled"),
        },
    ).start()
    try:
        with httpx.Client(base_url=engine.url, timeout=600) as client:
            changed = time.monotonic()
            namespace_file.write_text(f'skills = [{{ name = "probe", tag = "{tag}" }}]\n')
            while "bench/probe" not in client.get("/v1/skills").json():
                time.sleep(0.05)
            listed = time.monotonic() - changed
            if delay is not None:
                time.sleep(max(0.0, delay - (time.monotonic() - changed)))
            while True:
                started = time.monotonic()
                response = client.post("/v1/skills/bench/probe/run", json={"mode": "echo", "payload": 1})
                if response.status_code == 200:
                    break
                time.sleep(0.1)
            done = time.monotonic()
        return {"listed": listed, "first_success": done - changed, "first_request": done - started}
    finally:
        engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--interval", default="1s", help="NAMESPACE_UPDATE_INTERVAL of the engine")
    parser.add_argument("--delay", type=float, default=60.0, help="seconds before the first call (later)")
    args = parser.parse_args()

    probe = build_skill("probe").read_bytes()
    registry = Registry(Path(tempfile.mkdtemp(prefix="skill-engine-registry-"))).start()
    try:
        print("| precompile | client | listed after s | first success after change s | that request took s |")
        print("|---|---|---|---|---|")
        for client, delay in (("polling", None), (f"later ({args.delay:.0f} s)", args.delay)):
            for precompile in (False, True):
                result = one_run(registry, probe, precompile, delay, args.interval)
                print(
                    f"| {'on' if precompile else 'off'} | {client} | {result['listed']:.2f} | "
                    f"{result['first_success']:.2f} | {result['first_request']:.3f} |",
                    flush=True,
                )
    finally:
        registry.stop()


if __name__ == "__main__":
    main()
