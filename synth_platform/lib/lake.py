"""The public store as a DuckLake lakehouse: the scale path of `publish.py`.

The file store (`publish.py`) is the default; this module publishes the same release sets into a
DuckLake, whose metadata catalog is a SQL database and whose data is Parquet under a data path:

* by default an embedded catalog: SQLite metadata and a local data directory;
* in a real deployment a server catalog: PostgreSQL metadata, data on S3-compatible storage.

Layout inside the lake (attached as `lake`, schema `main`):

```
<table>            the latest release of each published table (replaced per release)
releases           one row per published release: provenance, gate scores, manifest
current_releases   view: the latest row of `releases` per table
```

A release set (a group of tables) is one DuckLake transaction, hence one snapshot: a reader sees
every table of the group old or every table new. Readers that issue several queries keep one
snapshot by running them in one transaction (`BEGIN` ... `COMMIT`) or by pinning a snapshot
(`lake_connect(config, read_only=True, snapshot=n)`); older release sets are read by time travel,
`select * from lake.<table> AT (VERSION => n)`, until retention (`expire_snapshots`) drops them.

The lake is optional. Its extensions must be loadable by the running DuckDB, and DuckDB cannot
download extensions here: `ducklake`, `sqlite_scanner`, `postgres_scanner` and `httpfs` come
from the `duckdb-ext-*` wheels, which install them under
`site-packages/duckdb_ext/extensions/v<duckdb>/<platform>/` and exist only for DuckDB 1.4.4 (the
`synth_platform[ducklake]` extra pins that DuckDB), or from `SYNTH_DUCKDB_EXTENSION_DIR`.
Connections point `extension_directory` there and never auto-install. Hence:

* `SYNTH_LAKE_CATALOG` unset: the embedded lake is on if its extensions load, otherwise off and
  publication is file store + `catalog.duckdb` only; `lake_unavailable_reason()` says why.
* `SYNTH_LAKE_CATALOG` set to a catalog: the lake is required; if its extensions do not load,
  `publish.publish_group` refuses the publication before committing anything.
* `SYNTH_LAKE_CATALOG=off`: no lake.

Configuration (environment; see `LakeConfig.from_env`):

```
SYNTH_LAKE_CATALOG    sqlite:/path/lake.sqlite          (unset: <dir>/lake.sqlite if loadable)
                      postgres:dbname=lake host=db port=5432 user=synth password=...
                      off                                            (no lake)
SYNTH_LAKE_DATA_PATH  /path/to/lake_data/ | s3://bucket/prefix/        (default: <dir>/lake_data/)
SYNTH_LAKE_S3_KEY_ID, SYNTH_LAKE_S3_SECRET (else AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY),
SYNTH_LAKE_S3_REGION, SYNTH_LAKE_S3_ENDPOINT (host:port of an S3-compatible server),
SYNTH_LAKE_S3_URL_STYLE (path | vhost), SYNTH_LAKE_S3_USE_SSL (true | false)
SYNTH_DUCKDB_EXTENSION_DIR   where the DuckDB extensions live (default: the `duckdb-ext-*` wheels)
```
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from synth_platform.lib.errors import PublicationError
from synth_platform.lib.identifiers import quote, safe_identifier

LAKE = "lake"  # the name the lake is attached as
RELEASES = "releases"
CURRENT_RELEASES = "current_releases"

_RELEASE_COLUMNS = (
    ("table_name", "varchar"),
    ("version", "varchar"),
    ("release_set", "bigint"),
    ("published_at", "timestamptz"),
    ("rows", "bigint"),
    ("synthesizer", "varchar"),
    ("seed", "bigint"),
    ("source_fingerprint", "varchar"),
    ("mlflow_run_id", "varchar"),
    ("model_version", "varchar"),
    ("code_version", "varchar"),
    ("dbt_model", "varchar"),
    ("scores", "json"),
    ("manifest", "json"),
)


def _sql_str(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The single value of a one-row query, fetched whole: DuckDB 2.x keeps a partly fetched
    result (`fetchone`) open on its connection and refuses the next relation call on it."""
    return con.execute(sql, params).fetchall()[0][0]


def _truthy(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class LakeConfig:
    """Where the lake's metadata catalog and data live.

    `catalog` is `sqlite:<path>` or `postgres:<libpq connection string>`; `data_path` a local
    directory or an `s3://bucket/prefix/` URL (then `s3` holds the DuckDB S3 secret options:
    key_id, secret, region, endpoint, url_style, use_ssl).
    """

    catalog: str
    data_path: str
    s3: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kind = self.catalog.split(":", 1)[0]
        if kind not in ("sqlite", "postgres") or ":" not in self.catalog:
            raise PublicationError(
                f"lake catalog {self.catalog!r}: expected 'sqlite:<path>' or "
                "'postgres:<connection string>'"
            )
        if not self.data_path:
            raise PublicationError("lake data path is empty")

    @property
    def kind(self) -> str:
        return self.catalog.split(":", 1)[0]

    @property
    def on_s3(self) -> bool:
        return self.data_path.startswith("s3://")

    @classmethod
    def from_env(cls, default_dir: Path, env: Mapping[str, str] | None = None) -> LakeConfig | None:
        """The lake configured by `SYNTH_LAKE_*` variables (module docstring), None if off.

        Unset, the lake is the embedded default (`sqlite:<default_dir>/lake.sqlite` with data
        under `<default_dir>/lake_data/`) when this DuckDB can load its extensions, and off
        (None; `lake_unavailable_reason()` says why) when it cannot: the lake is an optional
        mirror, and the current DuckDB has no extension wheels. An explicit catalog is returned
        even then, so that publishing to it fails loudly instead of silently skipping the lake.
        `SYNTH_DUCKDB_EXTENSION_DIR` is read from the process environment, not from `env`: it
        says where this process's DuckDB finds extensions.
        """
        env = os.environ if env is None else env
        catalog = env.get("SYNTH_LAKE_CATALOG", "").strip()
        if catalog.lower() in {"off", "none", "false", "0"}:
            return None
        explicit = bool(catalog)
        default_dir = Path(default_dir)
        catalog = catalog or f"sqlite:{(default_dir / 'lake.sqlite').resolve()}"
        data_path = env.get("SYNTH_LAKE_DATA_PATH", "").strip() or str(
            (default_dir / "lake_data").resolve()
        )
        s3: dict[str, str] = {}
        if data_path.startswith("s3://"):
            pairs = {
                "key_id": env.get("SYNTH_LAKE_S3_KEY_ID") or env.get("AWS_ACCESS_KEY_ID"),
                "secret": env.get("SYNTH_LAKE_S3_SECRET") or env.get("AWS_SECRET_ACCESS_KEY"),
                "session_token": env.get("SYNTH_LAKE_S3_SESSION_TOKEN")
                or env.get("AWS_SESSION_TOKEN"),
                "region": env.get("SYNTH_LAKE_S3_REGION") or env.get("AWS_REGION"),
                "endpoint": env.get("SYNTH_LAKE_S3_ENDPOINT"),
                "url_style": env.get("SYNTH_LAKE_S3_URL_STYLE"),
                "use_ssl": env.get("SYNTH_LAKE_S3_USE_SSL"),
            }
            s3 = {k: v for k, v in pairs.items() if v}
        config = cls(catalog=catalog, data_path=data_path, s3=s3)
        if not explicit and lake_unavailable_reason(config) is not None:
            return None
        return config


# --------------------------------------------------------------------------- connections


FIX = (
    "install `synth_platform[ducklake]` (it pins DuckDB 1.4.4, the only DuckDB the "
    "duckdb-ext-* wheels exist for) or set SYNTH_DUCKDB_EXTENSION_DIR to a directory holding "
    f"the extensions built for DuckDB {duckdb.__version__}"
)
"""How to make the lake's extensions loadable: part of every error that says they are not."""


def extension_directory() -> str | None:
    """The directory DuckDB loads extensions from: `SYNTH_DUCKDB_EXTENSION_DIR`, else the one
    the `duckdb-ext-*` wheels install into, else None (DuckDB's own default).

    `duckdb_ext` is a namespace package, so several installs (a `--target` directory on
    PYTHONPATH and the venv) can each contribute one: the first holding extensions for the
    running DuckDB wins, else the first that exists (whose loads then fail with a reason).
    """
    override = os.environ.get("SYNTH_DUCKDB_EXTENSION_DIR")
    if override:
        return override
    spec = importlib.util.find_spec("duckdb_ext")
    roots = [
        Path(r) / "extensions" for r in ((spec.submodule_search_locations or []) if spec else [])
    ]
    roots = [r for r in roots if r.is_dir()]
    for root in roots:
        if (root / f"v{duckdb.__version__}").is_dir():
            return str(root)
    return str(roots[0]) if roots else None


def _required_extensions(config: LakeConfig | None) -> tuple[str, ...]:
    """What `lake_connect` will load for `config` (None: the embedded default lake), so that
    availability is judged on exactly the extensions a publication needs."""
    kind = config.kind if config is not None else "sqlite"
    names = ["ducklake", "sqlite_scanner" if kind == "sqlite" else "postgres_scanner"]
    if config is not None and config.on_s3:
        names.append("httpfs")
    return tuple(names)


def _not_loadable(extension: str, exc: BaseException, ext_dir: str | None) -> str:
    """A one-line reason `extension` did not load, naming the fix."""
    text = str(exc).strip()
    detail = text.splitlines()[0].rstrip(".") if text else type(exc).__name__
    where = f"extension directory {ext_dir}" if ext_dir else "DuckDB's default extension directory"
    if ext_dir and Path(ext_dir).is_dir():
        built = sorted(p.name for p in Path(ext_dir).glob("v*") if p.is_dir())
        if built and f"v{duckdb.__version__}" not in built:
            where += f" (no v{duckdb.__version__} folder, only {', '.join(built)})"
    return (
        f"DuckDB {duckdb.__version__} cannot load the '{extension}' extension from {where}: "
        f"{detail}. Extensions are never downloaded at run time; {FIX}"
    )


@functools.lru_cache(maxsize=16)
def _first_load_failure(ext_dir: str | None, extensions: tuple[str, ...]) -> str | None:
    """Load `extensions` in a throwaway connection: None if all load, else the first reason.

    Cached per (extension directory, extensions): loading `ducklake` takes about half a
    second, and what a directory holds does not change within a process.
    """
    try:
        con = _new_connection()
    except duckdb.Error as exc:
        return _not_loadable(extensions[0], exc, ext_dir)
    try:
        for name in extensions:
            try:
                con.execute(f"load {name}")
            except duckdb.Error as exc:
                return _not_loadable(name, exc, ext_dir)
        return None
    finally:
        con.close()


def lake_unavailable_reason(config: LakeConfig | None = None) -> str | None:
    """Why the lake cannot run in this process, or None when it can.

    Checks that the running DuckDB loads every extension the lake needs (`ducklake`, the
    catalog's scanner, `httpfs` for S3 data; default: the embedded SQLite lake). Callers show
    the reason when the lake is off, and publication refuses an explicitly configured lake
    that cannot run instead of committing to the file store and failing afterwards.
    """
    return _first_load_failure(extension_directory(), _required_extensions(config))


def _new_connection() -> duckdb.DuckDBPyConnection:
    config: dict[str, Any] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": True,
    }
    ext_dir = extension_directory()
    if ext_dir:
        config["extension_directory"] = ext_dir
    return duckdb.connect(":memory:", config=config)


def _load(con: duckdb.DuckDBPyConnection, extension: str) -> None:
    try:
        con.execute(f"load {extension}")
    except duckdb.Error as exc:
        raise PublicationError(_not_loadable(extension, exc, extension_directory())) from exc


def lake_connect(
    config: LakeConfig, *, read_only: bool, snapshot: int | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake attached as `lake` and selected (`USE lake`).

    Args:
        read_only: Attach read-only (consumers); the catalog must already exist.
        snapshot: Pin the connection to this snapshot (implies read-only semantics for reads):
            every query then reads the same release set.
    """
    con = _new_connection()
    try:
        _load(con, "ducklake")
        _load(con, "sqlite_scanner" if config.kind == "sqlite" else "postgres_scanner")
        if config.kind == "sqlite":
            path = Path(config.catalog.split(":", 1)[1])
            if read_only and not path.exists():
                raise PublicationError(f"no lake catalog at {path}: nothing published yet")
            if not read_only:
                # The SQLite file is left to DuckDB's bundled SQLite (rollback journal): opening
                # it with Python's sqlite3 too, or switching it to WAL, made commits fail with
                # "database disk image is malformed" while reader processes were attached.
                path.parent.mkdir(parents=True, exist_ok=True)
        if config.on_s3:
            _load(con, "httpfs")
            options = [("type", "s3"), *sorted(config.s3.items())]
            body = ", ".join(
                f"{safe_identifier(k, what='S3 option')} "
                + (v if k == "use_ssl" and v.lower() in ("true", "false") else _sql_str(v))
                for k, v in options
            )
            con.execute(f"create or replace secret {quote(LAKE + '_s3')} ({body})")
        elif not read_only:
            Path(config.data_path).mkdir(parents=True, exist_ok=True)
        data_path = config.data_path if config.data_path.endswith("/") else config.data_path + "/"
        options = [f"data_path {_sql_str(data_path)}"]
        if read_only:
            options.append("read_only")
        if snapshot is not None:
            options.append(f"snapshot_version {int(snapshot)}")
        con.execute(
            f"attach {_sql_str('ducklake:' + config.catalog)} as {quote(LAKE)} "
            f"({', '.join(options)})"
        )
        con.execute(f"use {quote(LAKE)}")
        # Writers of the same lake (another process) conflict at commit: retry a while.
        con.execute("set ducklake_max_retry_count = 100")
    except Exception:
        con.close()
        raise
    return con


# --------------------------------------------------------------------------- publication


def _ensure_releases(con: duckdb.DuckDBPyConnection) -> None:
    cols = ", ".join(f"{quote(name)} {kind}" for name, kind in _RELEASE_COLUMNS)
    con.execute(f"create table if not exists {quote(RELEASES)} ({cols})")
    con.execute(
        f"create view if not exists {quote(CURRENT_RELEASES)} as select * from {quote(RELEASES)} "
        "qualify row_number() over (partition by table_name order by release_set desc, "
        "published_at desc) = 1"
    )


def publish_to_lake(
    config: LakeConfig, releases: Mapping[str, tuple[Path, Mapping[str, Any]]]
) -> int:
    """Publish a release set (table -> (Parquet candidate, manifest)) as one DuckLake snapshot.

    Each table is replaced by its candidate (`CREATE OR REPLACE TABLE`, so its schema may change
    between releases) and one row per table is added to `releases`, all in one transaction.
    `version`, `release_set` and `published_at` are taken from the manifest when it has them
    (mirroring the file store's numbering); otherwise they are assigned here: the next release
    set of the lake and the next `v%06d` of each table.

    Returns:
        The id of the DuckLake snapshot that holds the release set (for `AT (VERSION => id)`).

    Raises:
        PublicationError: empty group, unsafe table name, missing candidate, or a failed
            commit; the lake is then exactly as before.
    """
    if not releases:
        raise PublicationError("nothing to publish: the group is empty")
    for table, (candidate, _manifest) in releases.items():
        safe_identifier(table, what="table")
        if "://" not in str(candidate) and not Path(candidate).exists():
            raise PublicationError(f"table '{table}': candidate {candidate} does not exist")
    con = lake_connect(config, read_only=False)
    try:
        con.execute("begin")
        try:
            _ensure_releases(con)
            release_set = next(
                (int(m["release_set"]) for _, m in releases.values() if "release_set" in m),
                None,
            )
            if release_set is None:
                release_set = _scalar(
                    con, f"select coalesce(max(release_set), 0) + 1 from {quote(RELEASES)}"
                )
            now = datetime.now(UTC).isoformat(timespec="seconds")
            rows, versions = [], {}
            for table, (candidate, manifest) in sorted(releases.items()):
                version = manifest.get("version")
                if version is None:
                    count = _scalar(
                        con,
                        f"select count(*) from {quote(RELEASES)} where table_name = ?",
                        [table],
                    )
                    version = f"v{count + 1:06d}"
                full = {
                    **manifest,
                    "table": table,
                    "version": version,
                    "release_set": release_set,
                    "published_at": manifest.get("published_at", now),
                    "group": sorted(releases),
                }
                con.execute(
                    f"create or replace table {quote(table)} as "
                    f"select * from read_parquet({_sql_str(str(candidate))})"
                )
                versions[table] = version
                rows.append(
                    (
                        table, version, release_set, full["published_at"], full.get("rows"),
                        full.get("synthesizer"), full.get("seed"),
                        full.get("source_fingerprint"), full.get("mlflow_run_id"),
                        full.get("model_version"), full.get("code_version"),
                        full.get("dbt_model"), json.dumps(full.get("scores", {}), default=str),
                        json.dumps(full, default=str),
                    )
                )  # fmt: skip
            row_sql = f"({', '.join('?' * len(_RELEASE_COLUMNS))})"
            con.execute(  # one statement: one data file per release set
                f"insert into {quote(RELEASES)} values {', '.join([row_sql] * len(rows))}",
                [v for row in rows for v in row],
            )
            con.execute(
                f"call {quote(LAKE)}.set_commit_message(?, ?, extra_info => ?)",
                [
                    "synth_platform",
                    f"release set {release_set}: {', '.join(sorted(releases))}",
                    json.dumps({"release_set": release_set, "versions": versions}),
                ],
            )
            con.execute("commit")
        except Exception as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("rollback")
            if isinstance(exc, PublicationError):
                raise
            raise PublicationError(f"could not publish to the lake: {exc}") from exc
        return int(
            _scalar(con, f"select id from ducklake_last_committed_snapshot({_sql_str(LAKE)})")
        )
    finally:
        con.close()


def release_snapshots(con: duckdb.DuckDBPyConnection) -> dict[int, int]:
    """Release set -> the snapshot that published it (among snapshots not yet expired)."""
    out: dict[int, int] = {}
    for snapshot_id, extra in con.execute(
        f"select snapshot_id, commit_extra_info from {quote(LAKE)}.snapshots() "
        "where commit_extra_info is not null order by snapshot_id"
    ).fetchall():
        try:
            out[int(json.loads(extra)["release_set"])] = int(snapshot_id)
        except (ValueError, KeyError, TypeError):
            continue
    return out


def expire_snapshots(config: LakeConfig, keep: int, *, delete_files: bool = True) -> list[int]:
    """Retention: expire every snapshot but the `keep` latest (never the latest), then delete
    the data files no remaining snapshot references. Returns the expired snapshot ids.

    Readers pinned to (or in a transaction on) an expired snapshot lose it; with `keep >= 2`
    the snapshot just before the latest, the one a reader may still be on, survives.
    """
    if keep < 1:
        raise PublicationError(f"keep must be at least 1, got {keep}")
    con = lake_connect(config, read_only=False)
    try:
        ids = [
            int(r[0])
            for r in con.execute(
                f"select snapshot_id from {quote(LAKE)}.snapshots() order by snapshot_id desc"
            ).fetchall()
        ]
        expired = sorted(ids[keep:])
        if expired:
            con.execute(
                f"call ducklake_expire_snapshots({_sql_str(LAKE)}, versions => ?::ubigint[])",
                [expired],
            )
        if delete_files:
            con.execute(f"call ducklake_cleanup_old_files({_sql_str(LAKE)}, cleanup_all => true)")
        return expired
    finally:
        con.close()
