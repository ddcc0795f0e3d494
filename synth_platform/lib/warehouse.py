"""Where the real tables live: the DuckDB warehouse of the user's dbt profile, and its attaches.

synth_platform never owns the warehouse. It reads it through the same `profiles.yml` target that
dbt itself uses (rendered by dbt's own profile loader, so `env_var()` and `var()` mean what they
mean to dbt), opening the database file read-only and attaching every database the profile
attaches, so that a model left as a view over an attached source resolves as it does in dbt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from synth_platform.lib.errors import SourceError
from synth_platform.lib.identifiers import quote


@dataclass(frozen=True)
class Attachment:
    """A database the profile attaches next to the warehouse (`attach:` in dbt-duckdb)."""

    path: str
    alias: str | None = None
    type: str | None = None
    read_only: bool = True


@dataclass(frozen=True)
class Warehouse:
    """A DuckDB warehouse file and the databases attached to it."""

    path: Path
    attach: tuple[Attachment, ...] = ()

    @contextmanager
    def connect(self, *, table: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection with every attachment; errors name ``table``."""
        if not self.path.exists():
            raise SourceError(
                f"table '{table}': the warehouse {self.path} does not exist; build the dbt "
                "models first (materialize the dbt assets, or `dbt build`), or set "
                "`refresh_upstream: true` so that the refresh job builds them."
            )
        try:
            con = duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error as exc:
            raise SourceError(
                f"table '{table}': cannot open the warehouse {self.path} read-only ({exc}). "
                "Another process may hold it for writing, or it was written by a newer DuckDB "
                f"than {duckdb.__version__}."
            ) from None
        try:
            for a in self.attach:
                options = ["read_only"] if a.read_only else []
                if a.type:
                    options.append(f"type {a.type}")
                alias = f" as {quote(a.alias)}" if a.alias else ""
                opts = f" ({', '.join(options)})" if options else ""
                try:
                    con.execute(f"attach '{_sql_string(a.path)}'{alias}{opts}")
                except duckdb.Error as exc:
                    raise SourceError(
                        f"table '{table}': cannot attach {a.path} (alias {a.alias}) as the dbt "
                        f"profile does: {exc}"
                    ) from None
            yield con
        finally:
            con.close()


def _sql_string(value: str) -> str:
    return value.replace("'", "''")


def _resolve(path: str, base: Path) -> Path:
    p = Path(os.path.expanduser(path))
    return p if p.is_absolute() else (base / p).resolve()


def warehouse_from_credentials(credentials: Any, *, project_dir: Path) -> Warehouse:
    """Build a :class:`Warehouse` from dbt-duckdb credentials (relative paths are relative to
    the dbt project directory, where dagster-dbt runs dbt)."""
    path = str(getattr(credentials, "path", "") or "")
    if not path or path == ":memory:" or path.startswith(("md:", "motherduck:")):
        raise SourceError(
            f"the dbt profile's DuckDB path is {path or 'empty'!r}: synth_platform reads a "
            "warehouse file. Point the profile at a .duckdb file, or set `warehouse_path` on "
            "the synth_platform component/factory."
        )
    attach = []
    for a in getattr(credentials, "attach", None) or ():
        a_path = str(a.path)
        if (
            "://" not in a_path
            and not a_path.startswith(("md:", ":memory:"))
            and a.type
            in (
                None,
                "duckdb",
            )
        ):
            a_path = str(_resolve(a_path, project_dir))
        attach.append(
            Attachment(path=a_path, alias=a.alias, type=a.type, read_only=bool(a.read_only))
        )
    return Warehouse(path=_resolve(path, project_dir), attach=tuple(attach))


def warehouse_from_profile(
    *,
    project_dir: Path,
    profiles_dir: Path | None = None,
    profile: str | None = None,
    target: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Warehouse:
    """Render the dbt profile of ``project_dir`` exactly as dbt does and return its warehouse.

    Args:
        project_dir: The dbt project (its `dbt_project.yml` names the profile).
        profiles_dir: Folder of `profiles.yml`; default as dbt: `DBT_PROFILES_DIR`, else the
            project directory when it holds a `profiles.yml`, else `~/.dbt`.
        profile: Profile name (default: the project's `profile:`).
        target: Target name (default: the profile's `target:`).
        env: Environment for `env_var()` (default: this process's).

    Raises:
        SourceError: the profile cannot be read, or is not a DuckDB file target.
    """
    import yaml
    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    project_dir = Path(project_dir).resolve()
    if profiles_dir is None:
        if os.environ.get("DBT_PROFILES_DIR"):
            profiles_dir = Path(os.environ["DBT_PROFILES_DIR"])
        elif (project_dir / "profiles.yml").exists():
            profiles_dir = project_dir
        else:
            profiles_dir = Path.home() / ".dbt"
    if profile is None:
        project_yml = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
        profile = project_yml.get("profile")
    _ensure_dbt_flags()
    set_invocation_context(dict(os.environ if env is None else env))
    try:
        raw = read_profile(str(profiles_dir))
        loaded = Profile.from_raw_profiles(
            raw, str(profile), ProfileRenderer({}), target_override=target
        )
    except Exception as exc:  # dbt raises several types; all mean "this profile is unusable"
        raise SourceError(
            f"cannot read dbt profile {profile!r} (target {target or 'default'}) from "
            f"{profiles_dir}: {str(exc).strip()}"
        ) from None
    if loaded.credentials.type != "duckdb":
        raise SourceError(
            f"dbt profile {profile!r} uses the {loaded.credentials.type!r} adapter; "
            "synth_platform reads DuckDB warehouses (dbt-duckdb)."
        )
    return warehouse_from_credentials(loaded.credentials, project_dir=project_dir)


def _ensure_dbt_flags() -> None:
    """dbt's profile loader reads global flags; set neutral ones when dbt has none yet."""
    from argparse import Namespace

    from dbt.flags import get_flags, set_from_args

    if not hasattr(get_flags(), "LOG_CACHE_EVENTS"):
        set_from_args(Namespace(LOG_CACHE_EVENTS=False), None)
