"""The bundled demo source: a deterministic retail bank in a DuckDB file (private zone)."""

import dagster as dg

from synth_platform.defs.dbt import WAREHOUSE_POOL
from synth_platform.defs.resources import DemoSourceConfig, SynthHomeResource
from synth_platform.lib.demo import write_demo_source

DEMO_TABLES = ("customers", "accounts", "transactions")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            dg.AssetKey(["bank", t]),
            group_name="source",
            kinds={"duckdb"},
            description=f"Demo source table `{t}` (real-like data with PII; private zone).",
            skippable=True,
        )
        for t in DEMO_TABLES
    ],
    name="demo_bank_source",
    pool=WAREHOUSE_POOL,
)
def demo_bank_source(config: DemoSourceConfig, synth: SynthHomeResource):
    """Write the demo bank into `SYNTH_HOME/source/bank.duckdb` from a seed (same seed, same data)."""
    home = synth.home.ensure()
    counts = write_demo_source(path=home.source_db, scale=config.scale, seed=config.seed)
    for t in DEMO_TABLES:
        yield dg.MaterializeResult(
            asset_key=dg.AssetKey(["bank", t]),
            metadata={
                "dagster/row_count": counts[t],
                "path": dg.MetadataValue.path(str(home.source_db)),
                "scale": config.scale,
                "seed": config.seed,
            },
        )
