"""A fleet on loopback with real parts: three engines behind haproxy (deploy/fleet/haproxy.cfg, unchanged),
one docker-registry, one namespace file, one shared compiled cache.

Five skills are the same probe component published under five names: consistent hashing on the skill
path spreads them over the replicas, and one wasm digest means one compilation for the whole fleet.
A rolling restart drains each replica as Kubernetes would (out of the balancer first, then SIGTERM):
steady load sees no failed request. A replica killed hard costs only the requests it held.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.deploy.metrics import total
from tests.support.engine import EngineProcess
from tests.support.registry import Registry
from tests.support.servers import free_port
from tests.support.traffic import GoodTraffic

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "fleet" / "haproxy.cfg"
NAMES = ["probe", "probe2", "probe3", "probe4", "probe5"]
IN_FLIGHT = "kernel_skill_invocations_in_flight"
COMPILED = re.compile(r"(?<!pre)compiled (fleet/[\w-]+) in \d")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class Replica:
    index: int
    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    engine: EngineProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> None:
        addresses = {"KERNEL_ADDRESS": self.address, "METRICS_ADDRESS": f"127.0.0.1:{self.metrics_port}"}
        env = {**self.env, **addresses}
        engine = EngineProcess(self.workdir, env)
        engine.port, engine.metrics_port = self.port, self.metrics_port
        self.engine = engine.start(timeout=300)

    def process(self) -> subprocess.Popen[bytes]:
        assert self.engine is not None and self.engine.process is not None
        return self.engine.process

    def logs(self) -> str:
        log = self.workdir / "engine.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def served(self, name: str) -> float:
        text = httpx.get(self.metrics_url, timeout=10).text
        pattern = rf'kernel_skill_execution_total{{[^}}]*name="{name}"[^}}]*}} (\S+)'
        return sum(float(v) for v in re.findall(pattern, text))


class Haproxy:
    def __init__(self, workdir: Path, replicas: list[Replica]) -> None:
        self.port = free_port()
        self.socket = workdir / "haproxy.sock"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "FLEET_FRONTEND": f"127.0.0.1:{self.port}",
            "FLEET_ADMIN_SOCKET": str(self.socket),
            **{f"FLEET_ENGINE{r.index}": r.address for r in replicas},
        }
        self.log = (workdir / "haproxy.log").open("ab")
        command = ["haproxy", "-db", "-f", str(HAPROXY_CFG)]
        self.process = subprocess.Popen(command, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def admin(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def up(self, index: int) -> bool:
        try:
            state = self.admin("show servers state engines")
        except OSError:  # not listening yet
            return False
        for line in state.splitlines():
            fields = line.split()
            if len(fields) > 6 and fields[3] == f"engine{index}":
                return fields[5] == "2"  # srv_op_state: running
        return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@dataclass
class Fleet:
    replicas: list[Replica]
    haproxy: Haproxy

    def compilations(self) -> list[str]:
        return [m for r in self.replicas for m in COMPILED.findall(r.logs())]

    def owner(self, name: str) -> Replica:
        """The replica the balancer sends `name` to now: the one whose count rises with a few calls."""
        before = [r.served(name) for r in self.replicas]
        for _ in range(3):
            assert run(self.haproxy.url, name, {"mode": "echo", "payload": 0}).status_code == 200
        rises = [r.served(name) - b for r, b in zip(self.replicas, before, strict=True)]
        assert sorted(rises) == [0, 0, 3], f"consistent hashing: one replica serves {name}: {rises}"
        return self.replicas[rises.index(3)]

    def in_flight(self) -> float:
        return sum(total(r.metrics_url, IN_FLIGHT) for r in self.replicas if r.process().poll() is None)


@pytest.fixture
def fleet(tmp_path: Path, probe_wasm: Path) -> Iterator[Fleet]:
    registry = Registry(tmp_path / "registry").start()
    replicas: list[Replica] = []
    haproxy: Haproxy | None = None
    try:
        for name in NAMES:
            registry.oras_push(probe_wasm, f"fleet/skills/{name}:v1")
        namespace_file = tmp_path / "namespace.toml"
        entries = "".join(f'  {{ name = "{n}", tag = "v1" }},\n' for n in NAMES)
        namespace_file.write_text(f"skills = [\n{entries}]\n")
        shared = tmp_path / "compiled"  # the ReadWriteMany volume
        env = {
            "NAMESPACES__FLEET__CONFIG_URL": f"file://{namespace_file}",
            "NAMESPACES__FLEET__REGISTRY": f"http://{registry.host}",
            "NAMESPACES__FLEET__BASE_REPOSITORY": "fleet/skills",
            "WASMTIME_CACHE_DIR": str(shared),
            "SHUTDOWN_GRACE": "10s",
            "NAMESPACE_UPDATE_INTERVAL": "2s",
        }
        replicas = [Replica(i, env, tmp_path / f"engine{i}") for i in (1, 2, 3)]
        # As a Deployment rolls out (maxSurge 1): the first replica precompiles every listed skill into the
        # shared cache, the next ones find the artifacts there.
        first = replicas[0]
        first.start()
        wait_for(lambda: first.logs().count("precompiled fleet/") == len(NAMES), 900, "the first precompile")
        starting = [threading.Thread(target=r.start) for r in replicas[1:]]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        for r in replicas:
            assert r.engine is not None, r.logs()
        haproxy = Haproxy(tmp_path, replicas)
        wait_for(lambda: all(haproxy.up(r.index) for r in replicas), 30, "haproxy to see every replica up")
        yield Fleet(replicas, haproxy)
    finally:
        if haproxy is not None:
            haproxy.stop()
        for r in replicas:
            if r.engine is not None:
                r.engine.stop()
        registry.stop()


def run(url: str, name: str, body: dict[str, object], timeout: float = 600) -> httpx.Response:
    return httpx.post(f"{url}/v1/skills/fleet/{name}/run", json=body, timeout=timeout)


@pytest.mark.timeout(1700)  # compiles: ~10 s of CPU idle, minutes on a loaded machine
def test_compile_once_rolling_restart_without_failures_and_a_hard_kill(fleet: Fleet) -> None:
    url = fleet.haproxy.url
    # Every replica precompiles every listed skill at start-up, from the shared cache if it is there.
    for name in NAMES:
        response = run(url, name, {"mode": "echo", "payload": name})
        assert response.status_code == 200, response.text
        assert response.json() == {"result": name}
    assert len(fleet.compilations()) == 1, fleet.compilations()  # five names, one digest, three replicas
    owners = {name: fleet.owner(name).index for name in NAMES}
    assert len(set(owners.values())) >= 2, f"consistent hashing spreads skills over replicas: {owners}"

    # Rolling restart under steady load: each replica leaves the balancer, drains, exits 0, comes back.
    traffic = [
        GoodTraffic(url, f"/v1/skills/fleet/{name}/run", {"mode": "echo", "payload": i}, {"result": i})
        for i, name in enumerate(NAMES)
    ]
    for t in traffic:
        t.__enter__()
    try:
        for replica in fleet.replicas:
            restart(fleet, replica)
    finally:
        for t in traffic:
            t.stop()
    sent = sum(t.sent for t in traffic)
    failures = [f for t in traffic for f in t.failures]
    assert sent >= 50 and failures == [], f"{len(failures)} of {sent} failed: {failures[:3]}"
    assert len(fleet.compilations()) == 1, "restarted replicas load the shared artifact"

    # A hard kill: the replica's held requests fail, nothing else; the in-flight gauge rises and falls.
    victim = fleet.owner(NAMES[0])
    others = [n for n in NAMES if owners[n] != victim.index]
    steady_path = f"/v1/skills/fleet/{others[0]}/run"
    steady = GoodTraffic(url, steady_path, {"mode": "echo", "payload": 1}, {"result": 1})
    held_results: list[int | str] = []

    def hold() -> None:
        try:
            held_results.append(run(url, NAMES[0], {"mode": "sleep", "n": 20}).status_code)
        except httpx.HTTPError as e:
            held_results.append(repr(e))

    with steady:
        holders = [threading.Thread(target=hold) for _ in range(3)]
        for h in holders:
            h.start()
        wait_for(lambda: total(victim.metrics_url, IN_FLIGHT) == 3, 120, "three requests held by the victim")
        assert fleet.in_flight() >= 3
        victim.process().send_signal(signal.SIGKILL)
        victim.process().wait(timeout=10)
        for h in holders:
            h.join(timeout=60)
        after = run(url, NAMES[0], {"mode": "echo", "payload": "moved"})
        assert after.status_code == 200 and after.json() == {"result": "moved"}, after.text
    assert len(held_results) == 3 and 200 not in held_results, held_results  # only what it held was lost
    assert steady.failures == [] and steady.sent > 0
    wait_for(lambda: fleet.in_flight() == 0, 30, "the in-flight gauge to fall back to 0")
    assert len(fleet.compilations()) == 1


def restart(fleet: Fleet, replica: Replica) -> None:
    """Out of the balancer (Kubernetes: endpoint removal), SIGTERM, drain, exit 0, start, back in."""
    fleet.haproxy.admin(f"set server engines/engine{replica.index} state drain")
    direct = f"http://{replica.address}"
    assert run(direct, NAMES[0], {"mode": "echo", "payload": 0}).status_code == 200  # loaded in memory
    held: list[httpx.Response] = []
    sleep = {"mode": "sleep", "n": 2}
    holder = threading.Thread(target=lambda: held.append(run(direct, NAMES[0], sleep)))
    holder.start()
    wait_for(lambda: total(replica.metrics_url, IN_FLIGHT) >= 1, 120, "the held request to start")
    replica.process().send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    wait_for(lambda: refuses(replica.address), 5, "the draining replica to refuse new connections")
    assert time.monotonic() - signalled < 2
    holder.join(timeout=60)
    assert [r.status_code for r in held] == [200], "in-flight work finishes while draining"
    assert replica.process().wait(timeout=30) == 0
    replica.start()
    fleet.haproxy.admin(f"set server engines/engine{replica.index} state ready")
    wait_for(lambda: fleet.haproxy.up(replica.index), 30, f"engine{replica.index} in the balancer")
    time.sleep(1)  # steady load reaches the new replica


def refuses(address: str) -> bool:
    host, port = address.split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return False
    except OSError:
        return True
