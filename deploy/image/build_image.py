"""Builds the Skill Engine image without a container daemon: `python deploy/image/build_image.py OUT.oci.tar`.

The same image as `deploy/image/Containerfile`, assembled from parts that need no daemon and run nothing
inside a container: mmdebstrap builds a Debian 12 root filesystem from Debian's package registry with
the runtime packages of the Containerfile's final stage, the locked wheels (hashes checked) go into a venv
at /opt/skill-engine via a chroot, and umoci packs the tree into an OCI image whose configuration (ENV,
LABEL, USER, WORKDIR, VOLUME, EXPOSE, ENTRYPOINT, CMD) is read from the Containerfile itself, so the two
ways cannot drift apart. The result is an OCI archive (what `skopeo copy oci-archive:...` and
`podman load` read). Needs root (CI runs as root), mmdebstrap and umoci.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "image" / "Containerfile"
SUITE = "bookworm"  # Debian 12, as the Containerfile's debian:12-slim
USER_LINES = {
    "passwd": "skill-engine:x:10001:10001:Skill Engine:/var/lib/skill-engine:/usr/sbin/nologin\n",
    "group": "skill-engine:x:10001:\n",
}
# Documentation, manuals and apt state are of no use in a read-only runtime image.
PRUNE = ["usr/share/doc", "usr/share/man", "usr/share/info", "var/lib/apt/lists", "var/cache/apt", "var/log"]


def run(*command: str | Path, **kwargs: object) -> None:
    print("+", shlex.join(str(c) for c in command), flush=True)
    subprocess.run([str(c) for c in command], check=True, **kwargs)  # type: ignore[call-overload]


def final_stage_config(args: dict[str, str]) -> dict[str, list[str] | dict[str, str] | str]:
    """The image configuration the Containerfile's last stage declares, with ARGs substituted."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    stage: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stage = []
        stage.append((instruction.upper(), rest.strip()))
    values = dict(args)

    def substitute(value: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m[1] or m[2], ""), value)

    config: dict[str, list[str] | dict[str, str] | str] = {"env": {}, "label": {}, "volume": [], "expose": []}
    for instruction, rest in stage:
        if instruction == "ARG":
            name, _, default = rest.partition("=")
            values.setdefault(name, default)
        elif instruction in ("ENV", "LABEL"):
            target = config["env" if instruction == "ENV" else "label"]
            assert isinstance(target, dict)
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                target[key] = substitute(value)
        elif instruction == "VOLUME":
            config["volume"] = json.loads(rest)
        elif instruction == "EXPOSE":
            config["expose"] = rest.split()
        elif instruction in ("ENTRYPOINT", "CMD"):
            config[instruction.lower()] = json.loads(rest)
        elif instruction in ("USER", "WORKDIR"):
            config[instruction.lower()] = substitute(rest)
        elif instruction == "RUN" and (found := re.search(r"apt-get install -y --no-install-recommends ([^&]+)", rest)):
            config["packages"] = found[1].split()  # the runtime packages, the same in both builds
    return config


def wheelhouse(work: Path) -> Path:
    """The locked wheels (hash-checked) and the project's own wheel, downloaded on the build machine."""
    wheels = work / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for stale in wheels.glob("skill_engine-*.whl"):
        stale.unlink()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    run(*pip, "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
        "-r", ROOT / "requirements.lock", "-d", wheels)  # fmt: skip
    run(*pip, "wheel", "--no-deps", "-w", wheels, ROOT)
    return wheels


def root_filesystem(work: Path, wheels: Path, config: dict[str, list[str] | dict[str, str] | str]) -> Path:
    rootfs = work / "rootfs"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    pip_source = Path(__import__("pip").__file__).parent.parent  # pip itself, used from outside the image
    venv = "/opt/skill-engine"
    hooks = [
        f'mkdir -p "$1/tmp/wheels" "$1/tmp/pip" && cp -a {shlex.quote(str(wheels))}/. "$1/tmp/wheels/"'
        f' && cp -a {shlex.quote(str(pip_source / "pip"))} "$1/tmp/pip/"',
        f'chroot "$1" /usr/bin/python3 -m venv --without-pip {venv}',
        f'chroot "$1" env PYTHONPATH=/tmp/pip {venv}/bin/python -m pip --disable-pip-version-check --quiet'
        f" install --no-index --find-links /tmp/wheels skill-engine",
        'rm -rf "$1"/tmp/* ' + " ".join(f'"$1/{p}"' for p in PRUNE),
        *(f'echo {shlex.quote(line.strip())} >> "$1/etc/{name}"' for name, line in USER_LINES.items()),
        'mkdir -p "$1/etc/skill-engine" "$1/var/cache/skill-engine" "$1/var/lib/skill-engine" "$1/var/log"'
        ' && chown 10001:10001 "$1/var/cache/skill-engine" "$1/var/lib/skill-engine"'
        ' && chmod 0700 "$1/var/cache/skill-engine" && chmod 1777 "$1/tmp"',
    ]
    command: list[str | Path] = ["mmdebstrap", "--variant=essential", "--mode=root", "--format=directory",
                                 "--include=" + ",".join(config["packages"]),
                                 '--aptopt=Acquire::Retries "3"']  # fmt: skip
    for hook in hooks:
        command.append(f"--customize-hook={hook}")
    command += [SUITE, rootfs]
    run(*command, env={**os.environ, "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "0")})
    return rootfs


def oci_image(work: Path, rootfs: Path, config: dict[str, list[str] | dict[str, str] | str], tag: str) -> Path:
    layout = work / "oci"
    bundle = work / "bundle"
    for path in (layout, bundle):
        if path.exists():
            shutil.rmtree(path)
    image = f"{layout}:{tag}"
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", image)
    run("umoci", "unpack", "--image", image, bundle)
    (bundle / "rootfs").rmdir()
    rootfs.rename(bundle / "rootfs")
    run("umoci", "repack", "--image", image, bundle)
    options: list[str] = [
        "--os=linux",
        "--architecture=amd64",
        f"--config.user={config['user']}",
        f"--config.workingdir={config['workdir']}",
        "--clear=config.entrypoint",
        "--clear=config.cmd",
    ]
    assert isinstance(config["entrypoint"], list) and isinstance(config["cmd"], list)
    options += [f"--config.entrypoint={part}" for part in config["entrypoint"]]
    options += [f"--config.cmd={part}" for part in config["cmd"]]
    assert isinstance(config["env"], dict) and isinstance(config["label"], dict)
    options += ["--clear=config.env"] + [f"--config.env={k}={v}" for k, v in config["env"].items()]
    options += [f"--config.label={k}={v}" for k, v in config["label"].items()]
    options += [f"--manifest.annotation={k}={v}" for k, v in config["label"].items()]
    options += [f"--config.volume={v}" for v in config["volume"]]
    options += [f"--config.exposedports={p}" for p in config["expose"]]
    run("umoci", "config", "--image", image, *options)
    run("umoci", "gc", "--layout", layout)
    shutil.rmtree(bundle)
    return layout


def archive(layout: Path, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        for name in ("oci-layout", "index.json", "blobs"):
            tar.add(layout / name, arcname=name)
    partial.replace(output)


def report(layout: Path, output: Path) -> None:
    index = json.loads((layout / "index.json").read_text())
    blob = layout / "blobs" / "sha256"
    manifest = json.loads((blob / index["manifests"][0]["digest"].split(":")[1]).read_text())
    compressed = sum(layer["size"] for layer in manifest["layers"])
    print(f"image {output}: {output.stat().st_size / 2**20:.1f} MiB archive, {compressed / 2**20:.1f} MiB compressed layers")


def main(argv: list[str]) -> int:
    output = Path(argv[0] if argv else ROOT / "build" / "skill-engine.oci.tar").resolve()
    work = output.parent / "image"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    revision = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    source = os.environ.get("IMAGE_SOURCE") or subprocess.run(
        ["git", "-C", ROOT, "config", "--get", "remote.origin.url"], capture_output=True, text=True
    ).stdout.strip()
    args = {"VERSION": version, "REVISION": revision or "unknown", "SOURCE": source or "unknown"}
    config = final_stage_config(args)
    wheels = wheelhouse(work)
    rootfs = root_filesystem(work, wheels, config)
    layout = oci_image(work, rootfs, config, version)
    archive(layout, output)
    report(layout, output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
