"""The container image: built by `make image` (daemonless), pushed to a real registry, run with runc.

runc runs the image as Kubernetes would with the chart's securityContext: read-only root filesystem,
writable volumes for the cache, the data and /tmp, no capabilities, no new privileges, the image's own
user. The container shares the host's network namespace so the test reaches it on loopback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_stream import parse_sse
from tests.support.registry import Registry
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = ROOT / "build" / "skill-engine.oci.tar"
UID = 10001


@pytest.fixture(scope="module")
def archive() -> Path:
    """`make image`'s output; built here if missing (a failed build fails the tests, nothing is skipped)."""
    if not ARCHIVE.exists():
        subprocess.run(["make", "-s", "image"], cwd=ROOT, check=True, timeout=1800)
    return ARCHIVE


@pytest.fixture(scope="module")
def layout(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("oci")
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="tar")
    return directory


def tag_of(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    [manifest] = index["manifests"]
    tag: str = manifest["annotations"]["org.opencontainers.image.ref.name"]
    return tag


@pytest.fixture(scope="module")
def bundle(layout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bundle") / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:{tag_of(layout)}", str(directory)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return directory


def image_config(archive: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["skopeo", "inspect", "--config", f"oci-archive:{archive}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.mark.timeout(1800)  # builds the image first when `make image` has not
def test_image_configuration_is_non_root_with_volumes_labels_and_the_serve_entrypoint(archive: Path) -> None:
    config = image_config(archive)["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/opt/skill-engine/bin/skill-engine"]
    assert config["Cmd"] == ["serve"]
    assert config["WorkingDir"] == "/etc/skill-engine"
    assert set(config["Volumes"]) == {"/var/cache/skill-engine", "/var/lib/skill-engine", "/tmp"}
    assert set(config["ExposedPorts"]) == {"8081/tcp", "9000/tcp"}
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert re.fullmatch(r"[0-9a-f]{40}", labels["org.opencontainers.image.revision"])
    assert labels["org.opencontainers.image.source"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["WASMTIME_CACHE_DIR"] == "/var/cache/skill-engine/compiled"


@pytest.mark.timeout(900)  # compiles: ~10 s of CPU idle, minutes on a loaded machine
def test_image_holds_no_build_or_test_tools_and_reports_its_size(archive: Path, bundle: Path) -> None:
    rootfs = bundle / "rootfs"
    site = rootfs / "opt/skill-engine/lib/python3.11/site-packages"
    assert (site / "skill_engine" / "cli.py").is_file()
    assert (site / "wasmtime").is_dir()
    for tool in ("pip", "pytest", "mypy", "ruff", "_pytest", "playwright", "schemathesis", "setuptools"):
        assert not (site / tool).exists(), tool
    binaries = ("usr/bin/gcc", "usr/bin/cc", "usr/bin/make", "usr/bin/apt-get", "opt/skill-engine/bin/pip")
    for binary in binaries:
        assert not (rootfs / binary).exists(), binary
    assert not list(rootfs.glob("usr/lib/python3*/ensurepip"))
    size = sum(p.lstat().st_size for p in rootfs.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"\nimage: {archive.stat().st_size / 2**20:.0f} MiB archive, {size / 2**20:.0f} MiB unpacked")
    assert size < 1024 * 2**20


@pytest.mark.timeout(900)  # compiles: ~10 s of CPU idle, minutes on a loaded machine
def test_image_is_pushed_to_a_registry(archive: Path, layout: Path, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry").start()
    try:
        reference = f"docker://{registry.host}/platform/skill-engine:{tag_of(layout)}"
        subprocess.run(
            ["skopeo", "copy", "--dest-tls-verify=false", f"oci-archive:{archive}", reference],
            check=True,
            capture_output=True,
            timeout=600,
        )
        pushed = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--config", reference],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert json.loads(pushed.stdout)["config"] == image_config(archive)["config"]
    finally:
        registry.stop()


class Container:
    """One runc container from the unpacked bundle, with the chart's restrictions."""

    def __init__(self, bundle: Path, workdir: Path, skills: Path) -> None:
        self.id = f"skill-engine-test-{uuid.uuid4().hex[:8]}"
        self.port, self.metrics_port = free_port(), free_port()
        self.workdir = workdir
        self.log_path = workdir / "container.log"
        self.bundle = workdir / "bundle"
        self.bundle.mkdir(parents=True)
        volumes = {}
        for name in ("cache", "data"):
            path = workdir / name
            path.mkdir()
            os.chown(path, UID, UID)
            volumes[name] = path
        config = json.loads((bundle / "config.json").read_text())
        config["root"] = {"path": str(bundle / "rootfs"), "readonly": True}  # shared, never written
        process = config["process"]
        process.pop("rlimits", None)  # setrlimit is not permitted on these machines
        process["terminal"] = False
        process["noNewPrivileges"] = True
        sets = ("bounding", "effective", "inheritable", "permitted", "ambient")
        process["capabilities"] = {k: [] for k in sets}  # as the chart's `drop: [ALL]`
        process["env"] += [
            f"KERNEL_ADDRESS=127.0.0.1:{self.port}",
            f"METRICS_ADDRESS=127.0.0.1:{self.metrics_port}",
            "NAMESPACES__MOUNTED__DIRECTORY=/skills",
            "NAMESPACE_UPDATE_INTERVAL=1s",
            "SHUTDOWN_GRACE=10s",
        ]
        linux = config["linux"]
        linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"]
        tmpfs = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=64m"]}

        def bind(source: Path, target: str, mode: str) -> dict[str, Any]:
            return {"destination": target, "type": "bind", "source": str(source), "options": ["rbind", mode]}

        config["mounts"] += [
            tmpfs,
            bind(volumes["cache"], "/var/cache/skill-engine", "rw"),
            bind(volumes["data"], "/var/lib/skill-engine", "rw"),
            bind(skills, "/skills", "ro"),
        ]
        (self.bundle / "config.json").write_text(json.dumps(config))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 180) -> Container:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ["runc", "run", "--bundle", str(self.bundle), self.id], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"container exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"container did not become healthy:\n{self.logs()}")

    def pid(self) -> int:
        state = subprocess.run(["runc", "state", self.id], capture_output=True, text=True, check=True)
        pid: int = json.loads(state.stdout)["pid"]
        return pid

    def remove(self) -> None:
        if self.process is not None and self.process.poll() is None:
            subprocess.run(["runc", "kill", self.id, "KILL"], capture_output=True)
            self.process.wait(timeout=30)
        subprocess.run(["runc", "delete", "--force", self.id], capture_output=True)


@pytest.fixture
def container(bundle: Path, tmp_path: Path, probe_wasm: Path) -> Iterator[Container]:
    skills = tmp_path / "skills"
    skills.mkdir()
    shutil.copy(probe_wasm, skills / "probe.wasm")
    os.chmod(skills / "probe.wasm", 0o644)
    running = Container(bundle, tmp_path, skills)
    try:
        yield running.start()
    finally:
        running.remove()


@pytest.mark.timeout(1500)  # compiles: ~10 s of CPU idle, minutes on a loaded machine
def test_container_serves_builtin_and_mounted_skills_as_non_root_and_exits_0_on_sigterm(
    container: Container,
) -> None:
    status = Path(f"/proc/{container.pid()}/status").read_text().splitlines()
    uid_line = next(line for line in status if line.startswith("Uid:"))
    assert uid_line.split()[1:] == [str(UID)] * 4
    with httpx.Client(base_url=container.url, timeout=900) as client:  # compiling on a loaded machine
        assert client.get("/health").text == "ok"
        assert client.get("/ready").text == "ready"
        hello = client.post("/v1/skills/test-beta/hello/message-stream", json="x")
        assert hello.status_code == 200
        events = parse_sse(hello.content)
        assert "".join(d["text"] for e, d in events if e == "message" and d["type"] == "append") == "Hello"
        echo = {"mode": "echo", "payload": "from a volume"}
        mounted = client.post("/v1/skills/mounted/probe/run", json=echo)
        assert mounted.status_code == 200, mounted.text + container.logs()
        assert mounted.json() == {"result": "from a volume"}
    assert list((container.workdir / "cache").rglob("*.cwasm")), "compiled into the cache volume"

    assert container.process is not None
    subprocess.run(["runc", "kill", container.id, "TERM"], check=True)
    assert container.process.wait(timeout=60) == 0, container.logs()
