"""The one home for all local state (`SYNTH_HOME`) and the layout inside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synth_platform.lib.identifiers import safe_identifier


@dataclass(frozen=True)
class SynthHome:
    """Paths of every piece of local state, derived from one root directory.

    Private zone: source, warehouse, private (splits, candidates, models, gate results),
    mlflow. Public zone: public (published releases and their manifests only).
    """

    root: Path
    public: Path | None = None

    @property
    def source_db(self) -> Path:
        return self.root / "source" / "bank.duckdb"

    @property
    def warehouse_db(self) -> Path:
        return self.root / "warehouse" / "warehouse.duckdb"

    @property
    def private_dir(self) -> Path:
        return self.root / "private"

    @property
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def mlflow_tracking_uri(self) -> str:
        return f"sqlite:///{(self.mlflow_dir / 'mlflow.db').resolve()}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def public_dir(self) -> Path:
        return self.public if self.public is not None else self.root / "public"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    def table_dir(self, table: str) -> Path:
        """Private working directory of one synthetic table."""
        return self.private_dir / safe_identifier(table, what="table")

    def ensure(self) -> SynthHome:
        """Create the directories of the layout (idempotent)."""
        for d in (
            self.source_db.parent,
            self.warehouse_db.parent,
            self.private_dir,
            self.mlflow_artifacts,
            self.public_dir,
            self.dagster_home,
        ):
            d.mkdir(parents=True, exist_ok=True)
        return self
