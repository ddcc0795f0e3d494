"""`SyntheticTwinsComponent`: the `dg` component that adds synthetic twins to a Dagster project.

    dg scaffold defs synth_platform.SyntheticTwinsComponent twins

writes `defs/twins/defs.yaml`; set `dbt_project` to the path of the dbt project (relative to
that folder) and every opted-in model (`meta.synthetic` in its dbt yml) gets its twin,
downstream of the asset keys the project's own dbt component already gives its models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from synth_platform.defs.build import (
    DEFAULT_CRON,
    DEFAULT_GROUP_PREFIX,
    DEFAULT_JOB,
    build_synthetic_definitions,
)
from synth_platform.defs.tables import WAREHOUSE_POOL

#: The optional attributes as `dg scaffold defs` lists them, commented, under `dbt_project`
#: (every field of the component has a line: a test checks it).
SCAFFOLD_NOTES = {
    "home": "state home; default SYNTH_HOME, else <project root>/.synth",
    "public_dir": "public store; default SYNTH_PUBLIC_DIR, else <home>/public (give consumers "
    "only this)",
    "expectations_dir": "your hand-written GE suites, <table>.<kind>.json (default: none)",
    "mlflow_tracking_uri": "default sqlite:///<home>/mlflow/mlflow.db; a server URI works",
    "mlflow_ui_url": "base of the links shown in Dagster",
    "warehouse_path": "read this DuckDB file instead of the dbt profile's warehouse",
    "warehouse_attach": "databases to attach with warehouse_path (dbt-duckdb `attach:` entries)",
    "select": "only these opted-in models",
    "exclude": "opted-in models to skip",
    "asset_key_prefix": "prefix your dbt component adds to model keys, e.g. [warehouse]",
    "group_prefix": "Dagster group <prefix><table>",
    "job_name": "refreshes every twin from the warehouse as dbt left it (null: no job)",
    "cron": "refresh schedule, stopped until you switch it on (null: none)",
    "keep_releases": "releases kept per table (default all)",
    "pool": "concurrency pool of the steps that read the warehouse",
    "automation": "true: a twin refreshes when its dbt model materializes (automation sensor)",
    "refresh_upstream": "true: the refresh job also builds the dbt models upstream, same run",
    "job_executor": "forkserver: the refresh job forks its steps from a preloaded server",
}


def _find_dbt_project(root: Path, depth: int = 3) -> Path | None:
    """The first folder holding a `dbt_project.yml` within ``depth`` levels below ``root``
    (shallowest first; hidden folders, virtual environments and dbt's packages skipped)."""
    level = [root]
    for _ in range(depth):
        found = sorted(p for d in level for p in d.glob("*/dbt_project.yml"))
        if found:
            return found[0].parent
        level = [
            p
            for d in level
            for p in sorted(d.iterdir())
            if p.is_dir()
            and not p.name.startswith((".", "_"))
            and p.name not in {"node_modules", "dbt_packages", "target", "site-packages", "venv"}
        ]
    return None


class SyntheticTwinsScaffolder(dg.Scaffolder):
    """Writes a `defs.yaml` pointing at the dbt project found under the project root, with the
    other attributes listed, commented, at their defaults."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        root = Path(request.project_root or os.getcwd())
        found = _find_dbt_project(root)
        target = Path(request.target_path)
        rel = os.path.relpath(found, target) if found else "PATH/TO/YOUR/dbt_project"
        dg.scaffold_component(request, {"dbt_project": rel})
        if request.scaffold_format != "yaml":
            return
        path = target if request.append else target / "defs.yaml"
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(scaffold_comments())


def scaffold_comments() -> str:
    """The optional attributes, commented, at their defaults (YAML), with a note each."""
    import yaml

    lines = ["  # Optional (defaults shown); paths are relative to this file.\n"]
    for name, note in SCAFFOLD_NOTES.items():
        field = SyntheticTwinsComponent.model_fields[name]
        default = field.get_default(call_default_factory=True)
        shown = yaml.safe_dump({name: default}, default_flow_style=True).strip()[1:-1]
        lines.append(f"  # {shown}  # {note}\n")
    return "".join(lines)


@dg.scaffold_with(SyntheticTwinsScaffolder)
class SyntheticTwinsComponent(dg.Component, dg.Model, dg.Resolvable):
    """Published synthetic twins of the dbt models that opt in with `meta.synthetic`.

    Per table `<t>`: `<t>_split → <t>_synthesizer → <t>_synthetic` (+ blocking fidelity, privacy
    and validity checks) `→ <t>_published`, downstream of the model's existing asset key.
    With only `dbt_project` set, all state lands in `<project root>/.synth/` (public store in
    `.synth/public/`). Relative paths are relative to this `defs.yaml`'s folder.
    """

    dbt_project: str = Field(
        description="Path of the dbt project (folder of dbt_project.yml), relative to this "
        "defs.yaml. Its manifest lists the opted-in models; its profile names the warehouse."
    )
    home: str | None = Field(
        default=None,
        description="State home (private work files, MLflow store, public store, generated "
        "suites). Default: SYNTH_HOME if set, else <project root>/.synth.",
    )
    public_dir: str | None = Field(
        default=None,
        description="Public store; default SYNTH_PUBLIC_DIR if set, else <home>/public. "
        "Consumers get only this.",
    )
    expectations_dir: str | None = Field(
        default=None,
        description="Folder of your hand-written Great Expectations suites (<table>.<kind>.json, "
        "used as written); the others are generated from the current real rows at each "
        "refresh into <home>/private/suites.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI (a server works); default SQLite in <home>/mlflow.",
    )
    mlflow_ui_url: str = Field(
        default="http://127.0.0.1:5000", description="MLflow UI base URL for links in Dagster."
    )
    warehouse_path: str | None = Field(
        default=None,
        description="Read this DuckDB file instead of the warehouse of the dbt profile.",
    )
    warehouse_attach: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Databases to attach with `warehouse_path`, as dbt-duckdb's `attach:` "
        "entries (path, alias, read_only, type), e.g. the sources a model's view reads.",
    )
    select: list[str] | None = Field(
        default=None, description="Only these opted-in models (default: every opted-in model)."
    )
    exclude: list[str] = Field(default_factory=list, description="Opted-in models to skip.")
    asset_key_prefix: list[str] = Field(
        default_factory=list,
        description="Prefix your dbt component adds to model keys (e.g. [warehouse]); keys "
        "otherwise follow dagster-dbt's default translation and `meta.dagster.asset_key`.",
    )
    group_prefix: str = Field(
        default=DEFAULT_GROUP_PREFIX,
        description="Dagster group of a table or table group: <prefix><table>.",
    )
    job_name: str | None = Field(
        default=DEFAULT_JOB,
        description="Job refreshing every twin from the dbt models as they are in the warehouse.",
    )
    cron: str | None = Field(
        default=DEFAULT_CRON,
        description="Cron of the refresh schedule (stopped until switched on; null: none).",
    )
    keep_releases: int | None = Field(
        default=None, ge=1, description="Releases kept per table (default: all)."
    )
    pool: str | None = Field(
        default=WAREHOUSE_POOL,
        description="Concurrency pool of the steps reading the DuckDB warehouse.",
    )

    automation: bool = Field(
        default=False,
        description="Refresh a twin when its dbt model materializes (AutomationCondition.eager() "
        "on every twin asset; switch on the automation sensor). Unchanged tables are skipped.",
    )
    refresh_upstream: bool = Field(
        default=False,
        description="The refresh job also builds the dbt models (and their sources) upstream "
        "of the twins, in the same run. Off: your dbt job keeps the warehouse current.",
    )

    job_executor: Literal["forkserver"] | None = Field(
        default=None,
        description="`forkserver`: the refresh job runs on Dagster's multiprocess executor with "
        "its steps forked from a server that preloaded your code location's module and "
        "synth_platform's libraries (a no-op refresh of 6 tables: 25 s instead of 52 s). "
        "Default: your Definitions' executor.",
    )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        here = Path(context.path)

        def rel(p: str | None) -> Path | None:
            return None if p is None else (here / os.path.expanduser(p)).resolve()

        home = rel(self.home) or (
            Path(os.environ["SYNTH_HOME"])
            if os.environ.get("SYNTH_HOME")
            else Path(context.project_root) / ".synth"
        )
        return build_synthetic_definitions(
            dbt_project=rel(self.dbt_project),
            home=home,
            asset_key_prefix=self.asset_key_prefix,
            select=self.select,
            exclude=self.exclude,
            warehouse_path=rel(self.warehouse_path),
            warehouse_attach=[
                {**a, "path": str(rel(a["path"]))}
                if isinstance(a.get("path"), str) and ":" not in a["path"]  # not md:, s3://
                else a
                for a in self.warehouse_attach
            ],
            public_dir=rel(self.public_dir),
            expectations_dir=rel(self.expectations_dir),
            mlflow_tracking_uri=self.mlflow_tracking_uri,
            mlflow_ui_url=self.mlflow_ui_url,
            keep_releases=self.keep_releases,
            group_prefix=self.group_prefix,
            job_name=self.job_name,
            cron=self.cron,
            pool=self.pool,
            automation=self.automation,
            refresh_upstream=self.refresh_upstream,
            job_executor=self.job_executor,
        )
