"""The one home for all local state (`SYNTH_HOME`) and the layout inside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synth_platform.lib.identifiers import safe_identifier


@dataclass(frozen=True)
class SynthHome:
    """Paths of every piece of local state, derived from one root directory.

    Private zone: private (splits, candidates, models, gate results), mlflow. Public zone:
    public (published releases and their manifests only). The real data stays where the
    user's dbt profile keeps it (:mod:`synth_platform.lib.warehouse`).
    """

    root: Path
    public: Path | None = None

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
    def suites_dir(self) -> Path:
        """Generated Great Expectations suites, re-derived at each refresh (private: validity
        suites quote real ranges and categories)."""
        return self.private_dir / "suites"

    def table_dir(self, table: str) -> Path:
        """Private working directory of one synthetic table."""
        return self.private_dir / safe_identifier(table, what="table")

    def ensure(self) -> SynthHome:
        """Create the directories of the layout (idempotent)."""
        for d in (
            self.private_dir,
            self.mlflow_artifacts,
            self.public_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)
        return self
