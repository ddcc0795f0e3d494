"""dbt models as Dagster assets (dagster-dbt), with dbt tests surfaced as asset checks."""

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from synth_platform.defs.resources import PROJECT_ROOT, SynthHomeResource

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
WAREHOUSE_POOL = "duckdb_warehouse"


def _newest_source_mtime(project_dir: Path) -> float:
    files = [*project_dir.glob("models/**/*"), project_dir / "dbt_project.yml"]
    return max((f.stat().st_mtime for f in files if f.is_file()), default=0.0)


def ensure_manifest(project_dir: Path = DBT_PROJECT_DIR) -> Path:
    """Run `dbt parse` when the manifest is missing or older than the models' files.

    Opting a model in is a .yml edit; re-parsing on the next load (a `dagster dev` reload or a
    new run) is what makes its synthetic assets appear without any Python change.
    """
    manifest = project_dir / "target" / "manifest.json"
    if manifest.exists() and manifest.stat().st_mtime >= _newest_source_mtime(project_dir):
        return manifest
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run(
        [str(dbt), "parse", "--quiet", "--profiles-dir", str(project_dir)],
        cwd=project_dir,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not manifest.exists():
        raise RuntimeError(
            f"`dbt parse` failed in {project_dir}:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}"
        )
    return manifest


@cache
def dbt_project(project_dir: Path = DBT_PROJECT_DIR) -> DbtProject:
    ensure_manifest(project_dir)
    return DbtProject(project_dir=project_dir, profiles_dir=project_dir)


def load_manifest(project_dir: Path = DBT_PROJECT_DIR) -> dict[str, Any]:
    return json.loads(ensure_manifest(project_dir).read_text())


class Translator(DagsterDbtTranslator):
    """dbt sources map to the demo source assets' keys (`bank/<table>`); models keep names."""

    def get_group_name(self, dbt_resource_props: dict[str, Any]) -> str | None:
        return "warehouse"


def build_dbt_assets(project: DbtProject) -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=Translator(),
        pool=WAREHOUSE_POOL,
        name="warehouse_dbt_models",
    )
    def warehouse_dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, synth: SynthHomeResource
    ):
        """dbt build of the warehouse (sources → staging → marts), tests as asset checks."""
        home = synth.home.ensure()
        args = ["build", "--vars", json.dumps({"synth_home": str(home.root.resolve())})]
        yield from dbt.cli(args, context=context).stream()

    return warehouse_dbt_models
