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
    # Dagster's default executor: steps in parallel processes (`multiprocess`, the default;
    # `max_concurrent` in the run config), or `in_process`. The steps that open the DuckDB
    # warehouse carry the `duckdb_warehouse` pool, which the instance limits to one at a time.
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
