"""Assemble the Definitions: dbt assets, per-group and per-table synthetic assets, jobs,
schedule."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, get_asset_key_for_model

from synth_platform.defs.dbt import DBT_PROJECT_DIR, build_dbt_assets, dbt_project, load_manifest
from synth_platform.defs.groups import group_definitions
from synth_platform.defs.resources import PROJECT_ROOT, MlflowResource, SynthHomeResource
from synth_platform.defs.source import demo_bank_source
from synth_platform.defs.tables import table_definitions
from synth_platform.lib.home import SynthHome
from synth_platform.lib.multitable import groups_from_specs
from synth_platform.lib.specs import specs_from_manifest

REFRESH_JOB = "synthetic_refresh"
DEFAULT_CRON = "0 3 * * *"


def build_definitions(
    *,
    root: Path | None = None,
    project_dir: Path = DBT_PROJECT_DIR,
    expectations_dir: Path | None = None,
    cron: str | None = None,
    mlflow_tracking_uri: str | None = None,
) -> dg.Definitions:
    """Build every definition from the dbt project; arguments override the environment.

    Environment (read here, at load time, never at import): `SYNTH_HOME` (state root, default
    `<project>/.synth`), `SYNTH_REFRESH_CRON` (default 03:00 daily), `MLFLOW_TRACKING_URI`
    (default SQLite under SYNTH_HOME), `SYNTH_EXPECTATIONS_DIR`, `SYNTH_PUBLIC_DIR`,
    `MLFLOW_UI_URL`.
    """
    root = Path(root or os.environ.get("SYNTH_HOME") or PROJECT_ROOT / ".synth").resolve()
    home = SynthHome(root)
    project = dbt_project(project_dir)
    dbt_defs = build_dbt_assets(project)
    specs = specs_from_manifest(load_manifest(project_dir))

    assets: list[dg.AssetsDefinition] = [demo_bank_source, dbt_defs]
    checks: list[dg.AssetChecksDefinition] = []
    upstream = {m.name: get_asset_key_for_model([dbt_defs], m.name) for m in specs}
    by_name = {m.name: m for m in specs}
    # Models related by dbt `relationships` tests are synthesized together (errors name both
    # models of a cycle or of a reference to a model that is not opted in).
    groups = groups_from_specs(specs)
    grouped = {t for g in groups for t in g.tables}
    for group in groups:
        a, c = group_definitions(group, by_name, upstream)
        assets += a
        checks += c
    for model in specs:
        if model.name in grouped:
            continue
        a, c = table_definitions(model, upstream[model.name])
        assets += a
        checks += c

    refresh = dg.define_asset_job(
        REFRESH_JOB,
        selection=dg.AssetSelection.all(),
        description="Source → dbt → split → train → sample → gates → publish, every table.",
    )
    schedule = dg.ScheduleDefinition(
        name=f"{REFRESH_JOB}_schedule",
        job=refresh,
        cron_schedule=cron or os.environ.get("SYNTH_REFRESH_CRON") or DEFAULT_CRON,
        description="Refresh and republish every synthetic table (cron: SYNTH_REFRESH_CRON).",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[refresh],
        schedules=[schedule],
        resources={
            # The dbt next to this interpreter: a venv's bin/ need not be on PATH.
            "dbt": DbtCliResource(
                project_dir=project,
                profiles_dir=str(project_dir),
                dbt_executable=str(Path(sys.executable).with_name("dbt")),
            ),
            "synth": SynthHomeResource(
                root=str(root),
                expectations_dir=str(
                    expectations_dir
                    or os.environ.get("SYNTH_EXPECTATIONS_DIR")
                    or PROJECT_ROOT / "expectations"
                ),
                public_dir=os.environ.get("SYNTH_PUBLIC_DIR") or None,
            ),
            "mlflow": MlflowResource(
                tracking_uri=mlflow_tracking_uri
                or os.environ.get("MLFLOW_TRACKING_URI")
                or home.mlflow_tracking_uri,
                ui_url=os.environ.get("MLFLOW_UI_URL", "http://127.0.0.1:5000"),
            ),
        },
        # Steps share one DuckDB warehouse and a SQLite MLflow store: run them in one process
        # by default. Pools (`duckdb_warehouse`) keep the multiprocess/k8s executors safe too.
        executor=dg.in_process_executor,
    )
