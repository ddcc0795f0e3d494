"""The example project wired in Python, as a team without components would: the demo source,
`@dbt_assets` over a dbt project, and `build_synthetic_definitions` (the factory path)."""

import os
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from bank_example.defs.source import BankSourceResource, demo_bank_source
from synth_platform import build_synthetic_definitions
from synth_platform.defs.build import ensure_manifest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DBT = REPO / "dbt_project"
REFRESH_JOB = "synthetic_refresh"
DBT = str(Path(sys.executable).with_name("dbt"))


def example_definitions(
    *,
    home: Path | str,
    project_dir: Path = EXAMPLE_DBT,
    expectations_dir: Path | str | None = None,
    **factory_kwargs,
) -> dg.Definitions:
    """Definitions of the example over ``project_dir`` with all state in ``home``.

    The example's dbt profile renders `SYNTH_HOME`, so this points it at ``home`` for the
    process (dbt runs as a child process and inherits it).
    """
    home = Path(home).resolve()
    os.environ["SYNTH_HOME"] = str(home)
    project = DbtProject(project_dir)

    @dbt_assets(
        manifest=ensure_manifest(project),
        project=project,
        name="warehouse_dbt_models",
        pool="duckdb_warehouse",
    )
    def warehouse_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        yield from dbt.cli(["build", "--indirect-selection", "cautious"], context=context).stream()

    # One job builds the demo source, the dbt models and the twins, so that each test starts
    # from an empty home with a single run (the default job refreshes the twins only).
    factory_kwargs.setdefault("refresh_upstream", True)
    twins = build_synthetic_definitions(
        dbt_project=project,
        dbt_assets=[warehouse_dbt_models],
        home=home,
        expectations_dir=expectations_dir,
        **factory_kwargs,
    )
    return dg.Definitions.merge(
        twins,
        dg.Definitions(
            assets=[demo_bank_source, warehouse_dbt_models],
            resources={
                "dbt": DbtCliResource(project_dir=project, dbt_executable=DBT),
                "bank_source": BankSourceResource(home=str(home)),
            },
            executor=dg.in_process_executor,
        ),
    )


def example_specs(project_dir: Path = EXAMPLE_DBT):
    """The opted-in models of the example's dbt project."""
    import json

    from synth_platform.lib.specs import specs_from_manifest

    return specs_from_manifest(json.loads(ensure_manifest(DbtProject(project_dir)).read_text()))
