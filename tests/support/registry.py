"""A real OCI registry for the tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1:<free port>.

Each registry gets its own config, storage and log file; optionally TLS with a certificate from a throw-away
CA (made with openssl; clients trust it through `SSL_CERT_FILE`) and htpasswd (bcrypt) authentication.
Skills are pushed with the SDK's own `pharia-skill publish` (HTTPS only) or with the `oras` package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.servers import free_port
from tests.support.skills import tool_env

REGISTRY_BINARY = "docker-registry"
TOKEN_SERVICE = "test-registry"
TOKEN_ISSUER = "test-token-issuer"


@dataclass(frozen=True)
class Tls:
    ca: Path
    certificate: Path
    key: Path
    ca_key: Path


def make_ca(directory: Path) -> Tls:
    """A CA and a server certificate for 127.0.0.1 and localhost signed by it (rustls rejects self-signed
    leaves, so the SDK's publish needs the CA)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    extensions = directory / "server.ext"
    extensions.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=skill-engine test CA"),
        *("-keyout", str(ca_key), "-out", str(ca), "-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=127.0.0.1",
    )
    openssl(
        *("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial"),
        *("-out", str(cert), "-days", "2", "-extfile", str(extensions)),
    )
    return Tls(ca, cert, key, ca_key)


def bcrypt_hash(password: str) -> str:
    """htpasswd's bcrypt from apache2-utils if installed, else glibc's crypt (Python 3.11 still has it).

    Cost 4: the registry checks the hash on every request, and a push makes dozens."""
    if shutil.which("htpasswd"):
        out = subprocess.run(
            ["htpasswd", "-nbB", "-C", "4", "user", password],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        return out.strip().partition(":")[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


class Registry:
    def __init__(
        self,
        workdir: Path,
        *,
        tls: Tls | None = None,
        users: dict[str, str] | None = None,
        token_realm: str | None = None,
        token_ca: Tls | None = None,
    ) -> None:
        """`users`: htpasswd (Basic) auth. `token_realm` + `token_ca`: Bearer tokens from that realm,
        signed by the CA's key (see token_server.py); `users` are then only the credentials to push with."""
        self.token_realm = token_realm
        self.token_ca = token_ca
        self.workdir = workdir
        self.tls = tls
        self.users = users or {}
        self.port = free_port()
        self.log_path = workdir / "registry.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def start(self) -> Registry:
        binary = shutil.which(REGISTRY_BINARY)
        if binary is None:
            raise RuntimeError("docker-registry is not installed: run `make test` (it installs it)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        http: dict[str, object] = {"addr": self.host}
        if self.tls:
            http["tls"] = {"certificate": str(self.tls.certificate), "key": str(self.tls.key)}
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text"},
            "storage": {
                "filesystem": {"rootdirectory": str(self.workdir / "data")},
                "delete": {"enabled": True},
            },
            "http": http,
        }
        if self.token_realm and self.token_ca:
            config["auth"] = {
                "token": {
                    "realm": self.token_realm,
                    "service": TOKEN_SERVICE,
                    "issuer": TOKEN_ISSUER,
                    "rootcertbundle": str(self.token_ca.ca),
                }
            }
        elif self.users:
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{bcrypt_hash(p)}\n" for u, p in self.users.items()))
            config["auth"] = {"htpasswd": {"realm": "test-registry", "path": str(htpasswd)}}
        config_path = self.workdir / "config.yml"
        config_path.write_text(json.dumps(config))  # YAML is a superset of JSON
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"registry exited with {self.process.returncode}:\n{self.logs()}")
            try:
                status = httpx.get(f"{self.url}/v2/", verify=self._verify(), timeout=1)
                if status.status_code in (200, 401):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"registry did not start:\n{self.logs()}")

    def _verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=str(self.tls.ca)) if self.tls else True

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def blob_downloads(self, repository: str) -> int:
        """How many times a blob of `repository` was fetched (GET), from the registry's access log."""
        pattern = re.compile(rf'"GET /v2/{re.escape(repository)}/blobs/sha256:[0-9a-f]+ HTTP/1\.1" 200 ')
        return sum(1 for line in self.logs().splitlines() if pattern.search(line))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    # -- pushing ------------------------------------------------------------------------------------

    def publish(
        self, wasm: Path, name: str, tag: str, repository: str, user: str = "dummy", token: str = "none"
    ) -> None:
        """`pharia-skill publish`, the way a skill developer deploys (needs TLS)."""
        assert self.tls is not None, "pharia-skill publish only speaks HTTPS"
        bin_dir = tool_env() / "bin"
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "SKILL_REGISTRY": self.host,
            "SKILL_REPOSITORY": repository,
            "SKILL_REGISTRY_USER": user,
            "SKILL_REGISTRY_TOKEN": token,
            "SSL_CERT_FILE": str(self.tls.ca),
        }
        result = subprocess.run(
            [str(bin_dir / "pharia-skill"), "publish", str(wasm), "--name", name, "--tag", tag],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pharia-skill publish failed:\n{result.stdout}\n{result.stderr}")

    def oras_push(self, wasm: Path, reference: str) -> None:
        """A second client: the `oras` package, writing the same Wasm artifact layout (plain HTTP only)."""
        import oras.client  # type: ignore[import-untyped]

        assert self.tls is None
        config = self.workdir / "wasm-config.json"
        config.write_text(json.dumps({"architecture": "wasm", "os": "wasip2", "layerDigests": []}))
        client = oras.client.OrasClient(hostname=self.host, insecure=True)
        if self.users:
            user, password = next(iter(self.users.items()))
            client.auth.set_basic_auth(user, password)
        client.push(
            target=f"{self.host}/{reference}",
            files=[f"{wasm}:application/wasm"],
            manifest_config=f"{config}:application/vnd.wasm.config.v0+json",
            disable_path_validation=True,
            quiet=True,
        )
