"""The example's code location (workspace.yaml, `[tool.dg]`): its defs folder, plus one policy."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        # The demo's steps share one DuckDB warehouse file and a SQLite MLflow store, so they
        # run in one process here; a deployment with a tracking server can drop this line
        # (the warehouse steps carry the `duckdb_warehouse` pool either way).
        dg.Definitions(executor=dg.in_process_executor),
    )
