"""The example's code location (workspace.yaml, `[tool.dg]`): its defs folder, plus two policies."""

import os
from pathlib import Path

import dagster as dg

from synth_platform.forkserver import built_once_per_forkserver

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dg.definitions
@built_once_per_forkserver  # once per run's forkserver, not once per step process
def defs() -> dg.Definitions:
    # The example keeps its demo source and dbt warehouse in SYNTH_HOME, which its dbt profile
    # renders. DbtProjectComponent runs dbt from a copy of the project, where the profile's
    # relative default would point elsewhere: make the default absolute (`make` sets it anyway).
    os.environ.setdefault("SYNTH_HOME", str(PROJECT_ROOT / ".synth"))
    # Steps in parallel processes (`max_concurrent` in the run config: default, one per core),
    # forked from a server that imported the steps' libraries once: a spawned step process would
    # import them again (seconds per step). The steps that open the DuckDB warehouse carry the
    # `duckdb_warehouse` pool, which the instance limits to one at a time. (`make demo` runs the
    # job in one process instead.)
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(executor=EXECUTOR),
    )


EXECUTOR = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": [__name__, "synth_platform.preload"]}}},
    name="multiprocess_preloaded",
)
