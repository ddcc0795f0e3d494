"""Typed resources, injected into assets and checks by parameter name."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from synth_platform.lib.home import SynthHome

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SynthHomeResource(dg.ConfigurableResource):
    """Where synth_platform keeps its state, and the project-level settings of the gates."""

    root: str = Field(description="SYNTH_HOME: private zone, MLflow store, public store.")
    expectations_dir: str = Field(
        default=str(PROJECT_ROOT / "expectations"),
        description="Directory of the Great Expectations suites (<table>.<kind>.json).",
    )
    public_dir: str | None = Field(
        default=None,
        description="Public store location (default: <root>/public). Give consumers only this.",
    )
    keep_releases: int | None = Field(
        default=None, ge=1, description="Releases kept per table (None keeps all)."
    )

    @property
    def home(self) -> SynthHome:
        return SynthHome(Path(self.root), public=Path(self.public_dir) if self.public_dir else None)


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking: a SQLite store under SYNTH_HOME by default, or any server URI."""

    tracking_uri: str = Field(description="e.g. sqlite:///.../mlflow.db or http://mlflow:5000")
    ui_url: str = Field(
        default="http://127.0.0.1:5000",
        description="Base URL of the MLflow UI, for links in Dagster (`make mlflow` serves it).",
    )

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


class DemoSourceConfig(dg.Config):
    """Run config of the bundled demo source."""

    scale: float = Field(1.0, gt=0, description="1.0 = 1,000 customers (~15k transactions).")
    seed: int = Field(7, ge=0, description="Seed of the generator: same seed, same data.")
