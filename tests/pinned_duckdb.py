"""DuckDB 1.4.4 with its `duckdb-ext-*` wheels, installed beside the venv for the DuckLake tests.

The venv runs the current DuckDB (2.x), for which no extension wheels exist and which cannot
download extensions here, so the DuckLake mirror is off in it. `make test` installs DuckDB
1.4.4 and the four extension wheels with `pip install --no-deps --target` into
`<venv>/ducklake-duckdb-1.4.4`; a subprocess whose PYTHONPATH starts with that directory imports
that DuckDB (and finds the extensions through the `duckdb_ext` namespace package) while every
other package still comes from the venv. `--no-deps` matters: nothing else may be shadowed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

VERSION = "1.4.4"
PACKAGES = (
    f"duckdb=={VERSION}",
    *(
        f"duckdb-ext-{ext}=={VERSION}.20260205"
        for ext in ("ducklake", "sqlite", "postgres", "httpfs")
    ),
)
PINNED_DIR = Path(
    os.environ.get("SYNTH_TEST_PINNED_DUCKDB") or Path(sys.prefix) / "ducklake-duckdb-1.4.4"
)
"""Where `make test` installs them: `$(VENV)/ducklake-duckdb-1.4.4` (`sys.prefix` is the venv)."""
CHILD_FLAG = "SYNTH_TEST_PINNED_DUCKDB_CHILD"
"""Set in the pinned subprocess, so that the test that starts it does not start it again."""


def missing_reason() -> str | None:
    """Why the pinned DuckDB cannot be used (a skip reason), or None when it is installed."""
    if (PINNED_DIR / "duckdb").is_dir() and any(
        PINNED_DIR.glob("duckdb_ext/extensions/v*/*/ducklake.*")
    ):
        return None
    return (
        f"DuckDB {VERSION} + duckdb-ext-* not installed at {PINNED_DIR}: `make test` installs them "
        f"(pip install --no-deps --target {PINNED_DIR} {' '.join(PACKAGES)})"
    )


def pinned_env() -> dict[str, str]:
    """The environment of a process that imports the pinned DuckDB and loads its extensions."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PINNED_DIR), env.get("PYTHONPATH")]))
    env[CHILD_FLAG] = "1"
    # The lake under test is the one each test configures; the extensions are the wheels'.
    for name in ("SYNTH_DUCKDB_EXTENSION_DIR", "SYNTH_LAKE_CATALOG", "SYNTH_LAKE_DATA_PATH"):
        env.pop(name, None)
    return env


def run_pinned(args: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run `python <args>` under the pinned DuckDB."""
    return subprocess.run(
        [sys.executable, *args],
        env=pinned_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
