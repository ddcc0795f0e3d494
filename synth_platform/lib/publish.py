"""The public store: immutable, versioned releases of approved synthetic tables.

Layout (nothing else lives here: no real rows, no holdout, no model, no real PII):

```
public/
  catalog.duckdb                 views for consumers, rebuilt and swapped atomically
  <table>/v000001/data.parquet   immutable release data
  <table>/v000001/manifest.json  provenance and gate scores of the release
  <table>/LATEST                 name of the latest release, replaced atomically
```

A release directory is written under a temporary name and renamed into place, then `LATEST`
and the catalog are swapped with `os.replace`; a reader therefore sees the previous release or
the new one, never a mix, and a publisher killed half-way leaves the previous release serving.
Readers never open a file that a writer holds open, so DuckDB's one-writer rule never bites.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from synth_platform.lib.errors import PublicationError
from synth_platform.lib.identifiers import quote, safe_identifier

CATALOG = "catalog.duckdb"


@dataclass(frozen=True)
class Release:
    table: str
    version: str
    path: Path
    manifest: dict[str, Any]

    @property
    def data(self) -> Path:
        return self.path / "data.parquet"


def _versions(table_dir: Path) -> list[str]:
    if not table_dir.exists():
        return []
    return sorted(p.name for p in table_dir.iterdir() if p.is_dir() and p.name.startswith("v"))


def latest_version(store: Path, table: str) -> str | None:
    """The release consumers read as `<table>`, or None before the first publication."""
    pointer = Path(store) / safe_identifier(table, what="table") / "LATEST"
    return pointer.read_text().strip() if pointer.exists() else None


def list_releases(store: Path, table: str) -> list[Release]:
    table_dir = Path(store) / safe_identifier(table, what="table")
    out = []
    for v in _versions(table_dir):
        manifest = table_dir / v / "manifest.json"
        if manifest.exists():
            out.append(Release(table, v, table_dir / v, json.loads(manifest.read_text())))
    return out


@contextmanager
def _store_lock(store: Path) -> Iterator[None]:
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def publish_release(
    *,
    store: Path,
    table: str,
    candidate: Path,
    manifest: Mapping[str, Any],
    keep: int | None = None,
) -> Release:
    """Copy an approved candidate into a new immutable release and make it the latest.

    Args:
        store: Root of the public store.
        table: Table name (a plain identifier).
        candidate: Parquet file of the approved synthetic rows (private zone).
        manifest: Provenance and scores; `version` and `published_at` are added.
        keep: Keep at most this many releases of the table (the latest is never pruned).

    Raises:
        PublicationError: the candidate is missing or the store cannot be written.
    """
    store = Path(store)
    safe_identifier(table, what="table")
    if not Path(candidate).exists():
        raise PublicationError(f"table '{table}': candidate {candidate} does not exist")
    table_dir = store / table
    with _store_lock(store):
        table_dir.mkdir(parents=True, exist_ok=True)
        for stale in table_dir.glob(".v*.tmp-*"):  # left by a killed publisher
            shutil.rmtree(stale, ignore_errors=True)
        existing = _versions(table_dir)
        number = int(existing[-1][1:]) + 1 if existing else 1
        version = f"v{number:06d}"
        full = {
            **manifest,
            "table": table,
            "version": version,
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        tmp = table_dir / f".{version}.tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            shutil.copyfile(candidate, tmp / "data.parquet")
            (tmp / "manifest.json").write_text(json.dumps(full, indent=2, default=str) + "\n")
            os.replace(tmp, table_dir / version)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise PublicationError(f"table '{table}': could not write release: {exc}") from exc
        _write_atomic(table_dir / "LATEST", version + "\n")
        if keep is not None:
            for old in _versions(table_dir)[: max(0, len(_versions(table_dir)) - keep)]:
                if old != version:
                    shutil.rmtree(table_dir / old, ignore_errors=True)
        build_catalog(store)
    return Release(table, version, table_dir / version, full)


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def build_catalog(store: Path) -> Path:
    """(Re)build `catalog.duckdb`: a view per table (latest) and per release, and `releases`.

    Written to a temporary file and swapped in with `os.replace`, so open readers keep their
    consistent snapshot and new readers see the new one.
    """
    store = Path(store).resolve()
    tmp = store / f".{CATALOG}.{uuid.uuid4().hex}.tmp"
    rows = []
    with duckdb.connect(str(tmp)) as con:
        for table_dir in sorted(p for p in store.iterdir() if p.is_dir()):
            table = table_dir.name
            latest = latest_version(store, table)
            for rel in list_releases(store, table):
                data = _sql_str(str(rel.data))
                con.execute(
                    f"create view {quote(f'{table}__{rel.version}')} as "
                    f"select * from read_parquet({data})"
                )
                if rel.version == latest:
                    con.execute(f"create view {quote(table)} as select * from read_parquet({data})")
                m = rel.manifest
                rows.append(
                    (
                        table, rel.version, rel.version == latest, m.get("published_at"),
                        m.get("rows"), m.get("synthesizer"), m.get("seed"),
                        m.get("source_fingerprint"), m.get("mlflow_run_id"),
                        m.get("model_version"), m.get("code_version"), m.get("dbt_model"),
                        json.dumps(m.get("scores", {})), str(rel.data),
                    )
                )  # fmt: skip
        con.execute(
            "create table releases (table_name varchar, version varchar, is_latest boolean, "
            "published_at timestamptz, rows bigint, synthesizer varchar, seed bigint, "
            "source_fingerprint varchar, mlflow_run_id varchar, model_version varchar, "
            "code_version varchar, dbt_model varchar, scores json, data_path varchar)"
        )
        if rows:
            con.executemany(f"insert into releases values ({', '.join('?' * 14)})", rows)
    os.replace(tmp, store / CATALOG)
    return store / CATALOG


def connect(store: Path) -> duckdb.DuckDBPyConnection:
    """Read-only DuckDB connection to the public store's catalog (for consumers)."""
    path = Path(store) / CATALOG
    if not path.exists():
        raise PublicationError(f"no catalog at {path}: nothing has been published yet")
    return duckdb.connect(str(path), read_only=True)
