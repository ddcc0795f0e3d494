"""The demo source: a deterministic retail bank written into a DuckDB file (private zone).

In a real project this is whatever loads the warehouse's sources (Sling, dlt, an upstream
team). The dbt profile attaches the file as `bank`, so the dbt sources map to these keys.
"""

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from bank_example.generator import write_demo_source

DEMO_TABLES = ("customers", "accounts", "transactions")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class DemoSourceConfig(dg.Config):
    """Run config of the demo source."""

    scale: float = Field(1.0, gt=0, description="1.0 = 1,000 customers (~15k transactions).")
    seed: int = Field(7, ge=0, description="Seed of the generator: same seed, same data.")


class BankSourceResource(dg.ConfigurableResource):
    """Where the demo bank is written: `<home>/source/bank.duckdb`, as dbt's profile attaches it."""

    home: str = Field(description="SYNTH_HOME of the example (default <repo>/.synth).")

    @property
    def path(self) -> Path:
        return Path(self.home) / "source" / "bank.duckdb"

    def ensure_warehouse_dir(self) -> None:
        """DuckDB does not create folders: make the one the dbt profile writes the warehouse to."""
        (Path(self.home) / "warehouse").mkdir(parents=True, exist_ok=True)


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
    pool="duckdb_warehouse",
)
def demo_bank_source(config: DemoSourceConfig, bank_source: BankSourceResource):
    """Write the demo bank from a seed (same seed, same data)."""
    counts = write_demo_source(path=bank_source.path, scale=config.scale, seed=config.seed)
    bank_source.ensure_warehouse_dir()
    for t in DEMO_TABLES:
        yield dg.MaterializeResult(
            asset_key=dg.AssetKey(["bank", t]),
            metadata={
                "dagster/row_count": counts[t],
                "path": dg.MetadataValue.path(str(bank_source.path)),
                "scale": config.scale,
                "seed": config.seed,
            },
        )


#: The team's own warehouse job: the source load and `dbt build`. The twins' refresh job
#: (`synthetic_refresh`) reads what it leaves in the warehouse and skips unchanged tables.
WAREHOUSE_JOB = "warehouse_refresh"
warehouse_job = dg.define_asset_job(
    WAREHOUSE_JOB,
    selection=dg.AssetSelection.groups("source", "warehouse"),
    description="Demo source → dbt build (the warehouse the synthetic twins read).",
)


@dg.definitions
def resources() -> dg.Definitions:
    # Read at load time (never at import): the same SYNTH_HOME the dbt profile renders.
    home = os.environ.get("SYNTH_HOME") or str(PROJECT_ROOT / ".synth")
    return dg.Definitions(
        assets=[demo_bank_source],
        jobs=[warehouse_job],
        schedules=[
            dg.ScheduleDefinition(
                name=f"{WAREHOUSE_JOB}_schedule",
                job=warehouse_job,
                cron_schedule="0 2 * * *",  # before the twins' refresh (03:00)
                description="Load the demo source and build the dbt models.",
            )
        ],
        resources={"bank_source": BankSourceResource(home=home)},
    )
