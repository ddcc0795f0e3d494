"""The example's code location (workspace.yaml, `[tool.dg]`): its defs folder, plus two policies."""

import os
from pathlib import Path

import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dg.definitions
def defs() -> dg.Definitions:
    # The example keeps its demo source and dbt warehouse in SYNTH_HOME, which its dbt profile
    # renders. DbtProjectComponent runs dbt from a copy of the project, where the profile's
    # relative default would point elsewhere: make the default absolute (`make` sets it anyway).
    os.environ.setdefault("SYNTH_HOME", str(PROJECT_ROOT / ".synth"))
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        # The demo's steps share one DuckDB warehouse file and a SQLite MLflow store, so they
        # run in one process here; a deployment with a tracking server can drop this line
        # (the warehouse steps carry the `duckdb_warehouse` pool either way).
        dg.Definitions(executor=dg.in_process_executor),
    )
