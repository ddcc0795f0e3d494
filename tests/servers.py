"""Real servers that integration tests start and stop themselves: a throwaway PostgreSQL cluster
(Debian's server binaries) and an `mlflow server`. Nothing here is mocked."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_MISSING = "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
"""Skip reason of every test that needs a PostgreSQL server."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path | None:
    """The folder of `initdb`, `pg_ctl` and `createdb` (PATH first, then Debian's layout)."""
    found = shutil.which("initdb")
    if found and Path(found).resolve().with_name("pg_ctl").exists():
        return Path(found).resolve().parent
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    return None


@dataclass(frozen=True)
class Postgres:
    """A running cluster: a Unix socket in ``socket_dir`` (no password) and TCP on 127.0.0.1
    (``user``/``password``, as a deployment would connect)."""

    socket_dir: Path
    port: int
    user: str
    password: str

    def libpq(self, database: str) -> str:
        """Connection string over the Unix socket."""
        return f"dbname={database} host={self.socket_dir} port={self.port} user={self.user}"


@contextmanager
def postgres_cluster(*, databases: tuple[str, ...], password: str = "synth") -> Iterator[Postgres]:
    """initdb + pg_ctl start in a fresh temporary folder, ``databases`` created; stopped and
    deleted afterwards. Raises FileNotFoundError (with `PG_MISSING`) without the binaries.

    PostgreSQL refuses to run as root: as root, the cluster runs as `nobody`, in a folder under
    the system temp dir (pytest's own tmp folders are private to root).
    """
    bindir = pg_bin()
    if bindir is None:
        raise FileNotFoundError(PG_MISSING)
    root = Path(tempfile.mkdtemp(prefix="synth-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, user="nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port, user = root / "data", free_port(), "postgres"
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if as_user:
        shutil.chown(pwfile, user="nobody")

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=60)

    run(
        str(bindir / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}",
        "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
    )  # fmt: skip
    pwfile.unlink()
    run(
        str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "30",
        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
    )  # fmt: skip
    try:
        for database in databases:
            run(str(bindir / "createdb"), "-h", str(root), "-p", str(port), "-U", user, database)
        yield Postgres(socket_dir=root, port=port, user=user, password=password)
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def mlflow_server(root: Path, *, timeout: float = 90.0) -> Iterator[str]:
    """`mlflow server` on a free local port, its runs in SQLite under ``root`` and its artifacts
    served by the server itself (`--serve-artifacts`); yields its URL once /health answers.
    Stopped (its whole process group) afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (root / "server.log").open("wb")
    command = [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    server = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the workers stop with it
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server did not answer on {url}/health: "
                    + (root / "server.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield url
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=5)  # it waits for idle client connections otherwise
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()
