"""A throw-away PostgreSQL cluster from Debian's packages, on a free loopback port, in a temporary directory.

PostgreSQL refuses to run as root, so when the tests run as root (CI does) the cluster belongs to the
`postgres` user the Debian package creates, and its commands run through `runuser`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.servers import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: `make test` installs Debian's postgresql package")
    return found[-1]


class PostgresCluster:
    """Its directory must be reachable by the `postgres` user: a fresh one under the system temp
    directory (pytest's own temporary directories are root-only)."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="skill-engine-postgres-"))
        self.port = free_port()
        self.user = "skill_engine"
        self.password = "evaluation-secret"
        self._as: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/evaluations"

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresCluster:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.directory, "postgres", "postgres")
        data = str(self.directory / "data")
        pwfile = self.directory / "pw"
        pwfile.write_text(self.password)
        if self._as:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(_bin("initdb"), "-D", data, "-U", self.user, "--pwfile", str(pwfile), "-A", "scram-sha-256")
        self._run(
            _bin("pg_ctl"),
            "-D",
            data,
            "-l",
            str(self.directory / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1",
            "start",
        )
        env = dict(os.environ, PGPASSWORD=self.password)
        deadline = time.monotonic() + 30
        while True:
            created = subprocess.run(
                [_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "evaluations"],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
            )
            if created.returncode == 0:
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"createdb failed: {created.stderr}")
            time.sleep(0.3)

    def stop(self) -> None:
        data = str(self.directory / "data")
        subprocess.run(
            [*self._as, _bin("pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(self.directory, ignore_errors=True)
