"""The public store: immutable, versioned releases of approved synthetic tables.

Layout (nothing else lives here: no real rows, no holdout, no model, no real PII):

```
public/
  STATE.json                     the committed state: per table, its latest and kept versions
  catalog.duckdb                 views for consumers, rebuilt from STATE and swapped atomically
  <table>/v000001/data.parquet   immutable release data
  <table>/v000001/manifest.json  provenance and gate scores of the release
  <table>/LATEST                 name of the latest release (a convenience copy of STATE)
  lake/                          the same release sets as a DuckLake (SQLite metadata by
                                 default; Postgres + S3 in production: `lib.lake`), when on
```

The lake is an optional mirror: it needs DuckDB extensions the running DuckDB may not load
(`lib.lake`). Without it publication is the file store and `catalog.duckdb` alone; a lake that
is configured explicitly but cannot run refuses the publication before anything is committed.

Publishing a group of tables (one table is a group of one) stages each release directory under
a temporary name and renames it into place, where it stays invisible: only `STATE.json` says
which versions exist. Replacing `STATE.json` with `os.replace` is the single commit point of
the whole group; the catalog is then rebuilt from it and swapped in the same way. A reader
therefore sees every table of the group old or every table new, never a mix, and a publisher
killed at any instant leaves the previous state serving: the next publisher removes what the
dead one staged and repairs a catalog that lags `STATE.json`. Readers never open a file that a
writer holds open, so DuckDB's one-writer rule never bites, and the files of a release that
retention drops stay for `RETIRE_GRACE_S` (600 s by default, `SYNTH_RETIRE_GRACE_S`) so that a
reader of a catalog that still lists it can finish; a later publication deletes them.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
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
from synth_platform.lib.lake import (
    LakeConfig,
    expire_snapshots,
    lake_unavailable_reason,
    publish_to_lake,
)

CATALOG = "catalog.duckdb"
STATE = "STATE.json"
RETIRE_GRACE_S = float(os.environ.get("SYNTH_RETIRE_GRACE_S", "600"))
"""Seconds a release dropped by retention keeps its files, so that a reader who opened the
catalog listing it just before the switch can finish its queries."""
LAKE_DIR = "lake"  # the embedded DuckLake (SQLite metadata + Parquet data), when enabled
CATALOG_STORAGE_VERSION = "v1.4.0"
"""The DuckDB storage format `catalog.duckdb` is written in. DuckDB 2.x otherwise writes a
format DuckDB 1.x cannot open, and the catalog is the consumers' interface: readers on DuckDB
1.4 (the `ducklake` extra, a 1.x CLI) must keep opening it whatever DuckDB the publisher runs."""


@dataclass(frozen=True)
class Release:
    table: str
    version: str
    path: Path
    manifest: dict[str, Any]

    @property
    def data(self) -> Path:
        return self.path / "data.parquet"


@dataclass(frozen=True)
class Staged:
    """An approved candidate to publish: its Parquet file and provenance."""

    candidate: Path
    manifest: Mapping[str, Any]


def read_state(store: Path) -> dict[str, Any]:
    """The committed state: `{"generation": n, "tables": {t: {"latest": v, "versions": [..]}}}`."""
    path = Path(store) / STATE
    if path.exists():
        return json.loads(path.read_text())
    # A store written before STATE.json existed: its LATEST pointers were the truth.
    tables = {}
    for pointer in sorted(Path(store).glob("*/LATEST")) if Path(store).exists() else []:
        versions = sorted(
            p.name for p in pointer.parent.glob("v*") if (p / "manifest.json").exists()
        )
        tables[pointer.parent.name] = {"latest": pointer.read_text().strip(), "versions": versions}
    return {"generation": 0, "tables": tables}


def latest_version(store: Path, table: str) -> str | None:
    """The release consumers read as `<table>`, or None before the first publication."""
    entry = read_state(store)["tables"].get(safe_identifier(table, what="table"))
    return entry["latest"] if entry else None


def list_releases(
    store: Path, table: str, *, state: Mapping[str, Any] | None = None
) -> list[Release]:
    """The committed releases of `table`, oldest first."""
    table = safe_identifier(table, what="table")
    entry = (state or read_state(store))["tables"].get(table)
    out = []
    for v in entry["versions"] if entry else []:
        path = Path(store) / table / v
        out.append(Release(table, v, path, json.loads((path / "manifest.json").read_text())))
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
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _retired_in_grace(state: Mapping[str, Any], table: str, now: float, grace: float) -> set[str]:
    retired = (state.get("retired") or {}).get(table, {})
    return {v for v, at in retired.items() if now - float(at) < grace}


def _remove_uncommitted(
    store: Path, state: Mapping[str, Any], *, grace_s: float = RETIRE_GRACE_S
) -> None:
    """Delete what a killed publisher staged (temp files, a temp catalog's WAL, temp dirs,
    versions STATE does not list) and releases retired more than `grace_s` seconds ago."""
    now = time.time()
    for pattern in (".*.tmp", ".*.tmp.wal"):
        for tmp in store.glob(pattern):
            tmp.unlink(missing_ok=True)
    table_dirs = (
        p
        for p in store.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name != LAKE_DIR
    )
    for table_dir in table_dirs:
        committed = set((state["tables"].get(table_dir.name) or {}).get("versions", []))
        committed |= _retired_in_grace(state, table_dir.name, now, grace_s)
        for tmp in table_dir.glob(".LATEST.*.tmp"):
            tmp.unlink(missing_ok=True)
        for child in table_dir.iterdir():
            stale_tmp = child.name.startswith(".v") and ".tmp-" in child.name
            orphan = child.is_dir() and child.name.startswith("v") and child.name not in committed
            if stale_tmp or orphan:
                shutil.rmtree(child, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _next_version(table_dir: Path) -> str:
    numbers = [int(p.name[1:]) for p in table_dir.glob("v*") if p.name[1:].isdigit()]
    return f"v{max(numbers, default=0) + 1:06d}"


def publish_group(
    *,
    store: Path,
    releases: Mapping[str, Staged],
    keep: int | None = None,
    lake: LakeConfig | None = None,
    grace: float = RETIRE_GRACE_S,
) -> dict[str, Release]:
    """Publish approved candidates of several tables as one atomic change of the store.

    Args:
        store: Root of the public store.
        releases: Table name (a plain identifier) -> its approved candidate and manifest.
        keep: Keep at most this many releases per table (the latest is never pruned). The
            files of a release pruned here are deleted by a publication at least `grace`
            seconds later, so that a reader who opened an older catalog can still read them.
        lake: Mirror the release set into this DuckLake after the commit (None: no lake;
            `LakeConfig.from_env` gives None when the lake is off or cannot run).
        grace: Seconds a retired release keeps its files.

    Raises:
        PublicationError: a candidate is missing, `lake` is given but this DuckDB cannot load
            its extensions, or the store cannot be written; the store is then exactly as
            before. (A lake that fails after the file store committed raises too, saying so.)
    """
    store = Path(store)
    if not releases:
        raise PublicationError("nothing to publish: the group is empty")
    for table, staged in releases.items():
        safe_identifier(table, what="table")
        if table == LAKE_DIR:
            raise PublicationError(f"table '{table}': the name is reserved for the lake folder")
        if not Path(staged.candidate).exists():
            raise PublicationError(f"table '{table}': candidate {staged.candidate} does not exist")
    if keep is not None and keep < 1:
        raise PublicationError(f"keep must be at least 1, got {keep}")
    if lake is not None and (reason := lake_unavailable_reason(lake)) is not None:
        # Checked before the commit: the file store must not get a release set that the
        # configured lake then cannot take.
        raise PublicationError(
            f"the configured DuckLake ({lake.kind} catalog, SYNTH_LAKE_CATALOG) cannot run, so "
            f"nothing was published: {reason} (or set SYNTH_LAKE_CATALOG=off to publish without it)"
        )
    with _store_lock(store):
        state = read_state(store)
        _remove_uncommitted(store, state, grace_s=grace)
        published_at = datetime.now(UTC).isoformat(timespec="seconds")
        generation = int(state.get("generation", 0)) + 1
        out: dict[str, Release] = {}
        for table, staged in releases.items():
            table_dir = store / table
            table_dir.mkdir(parents=True, exist_ok=True)
            version = _next_version(table_dir)
            full = {
                **staged.manifest,
                "table": table,
                "version": version,
                "published_at": published_at,
                "release_set": generation,
                "group": sorted(releases),
            }
            tmp = table_dir / f".{version}.tmp-{uuid.uuid4().hex}"
            tmp.mkdir()
            try:
                shutil.copyfile(staged.candidate, tmp / "data.parquet")
                _fsync(tmp / "data.parquet")  # on disk before STATE may point at it
                (tmp / "manifest.json").write_text(json.dumps(full, indent=2, default=str) + "\n")
                os.replace(tmp, table_dir / version)  # staged: not listed in STATE yet
            except OSError as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                _remove_uncommitted(store, state)
                raise PublicationError(f"table '{table}': could not write release: {exc}") from exc
            out[table] = Release(table, version, table_dir / version, full)
        tables = {t: dict(e) for t, e in state["tables"].items()}
        now = time.time()
        retired = {
            t: {v: at for v, at in vs.items() if v in _retired_in_grace(state, t, now, grace)}
            for t, vs in (state.get("retired") or {}).items()
        }
        for table, rel in out.items():
            versions = [*tables.get(table, {}).get("versions", []), rel.version]
            if keep is not None and len(versions) > keep:
                # Retired, not deleted yet: a catalog that lists them may still be open in a
                # reader. A publication after the grace period deletes them.
                for v in versions[:-keep]:
                    retired.setdefault(table, {})[v] = now
                versions = versions[-keep:]
            tables[table] = {"latest": rel.version, "versions": versions}
        new_state = {
            "generation": generation,
            "committed_at": published_at,
            "tables": dict(sorted(tables.items())),
            "retired": {t: vs for t, vs in sorted(retired.items()) if vs},
        }
        _write_atomic(store / STATE, json.dumps(new_state, indent=2) + "\n")  # commit point
        build_catalog(store, state=new_state)
        for table, rel in out.items():
            _write_atomic(store / table / "LATEST", rel.version + "\n")
        if lake is not None:
            _publish_to_lake(lake, out, keep=keep, generation=generation)
    return out


def _publish_to_lake(
    lake: LakeConfig, out: Mapping[str, Release], *, keep: int | None, generation: int
) -> None:
    try:
        publish_to_lake(lake, {t: (r.data, r.manifest) for t, r in out.items()})
        if keep is not None:
            expire_snapshots(lake, keep=max(keep, 2))
    except PublicationError as exc:
        raise PublicationError(
            f"release set {generation} is committed to the file store, but the lake "
            f"({lake.catalog.split(':')[0]}) did not take it: {exc}"
        ) from exc


def publish_release(
    *,
    store: Path,
    table: str,
    candidate: Path,
    manifest: Mapping[str, Any],
    keep: int | None = None,
) -> Release:
    """Publish one table's approved candidate (a group of one); see `publish_group`."""
    out = publish_group(store=store, releases={table: Staged(Path(candidate), manifest)}, keep=keep)
    return out[table]


def repair(store: Path) -> None:
    """Remove what a killed publisher left and rebuild a catalog that lags `STATE.json`."""
    store = Path(store)
    with _store_lock(store):
        state = read_state(store)
        _remove_uncommitted(store, state)
        if state["tables"]:
            build_catalog(store, state=state)


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def build_catalog(store: Path, *, state: Mapping[str, Any] | None = None) -> Path:
    """(Re)build `catalog.duckdb` from the committed state: a view per table (latest) and per
    release, and the `releases` table of manifests.

    Written to a temporary file and swapped in with `os.replace`, so open readers keep their
    consistent snapshot and new readers see the new one; in the `CATALOG_STORAGE_VERSION`
    format, so that DuckDB 1.4 readers can open what DuckDB 2.x writes.
    """
    store = Path(store).resolve()
    state = state or read_state(store)
    tmp = store / f".{CATALOG}.{uuid.uuid4().hex}.tmp"
    rows = []
    config = {"storage_compatibility_version": CATALOG_STORAGE_VERSION}
    with duckdb.connect(str(tmp), config=config) as con:
        for table, entry in sorted(state["tables"].items()):
            latest = entry["latest"]
            for rel in list_releases(store, table, state=state):
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
                        json.dumps(m.get("scores", {})), str(rel.data), m.get("release_set"),
                        json.dumps(m),
                    )
                )  # fmt: skip
        con.execute(
            "create table releases (table_name varchar, version varchar, is_latest boolean, "
            "published_at timestamptz, rows bigint, synthesizer varchar, seed bigint, "
            "source_fingerprint varchar, mlflow_run_id varchar, model_version varchar, "
            "code_version varchar, dbt_model varchar, scores json, data_path varchar, "
            "release_set bigint, manifest json)"
        )
        if rows:
            con.executemany(f"insert into releases values ({', '.join('?' * 16)})", rows)
    os.replace(tmp, store / CATALOG)
    return store / CATALOG


def connect(store: Path) -> duckdb.DuckDBPyConnection:
    """Read-only DuckDB connection to the public store's catalog (for consumers).

    The catalog is attached to a fresh in-memory database, so every call sees the catalog
    committed at that moment (DuckDB would otherwise hand back a cached instance of a file
    already open in this process, i.e. an older release set).
    """
    path = Path(store) / CATALOG
    if not path.exists():
        raise PublicationError(f"no catalog at {path}: nothing has been published yet")
    con = duckdb.connect(":memory:")
    con.execute(f"attach {_sql_str(str(path))} as catalog (read_only)")
    con.execute("use catalog")
    return con
