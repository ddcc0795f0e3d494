"""Typed resources, injected into assets and checks by parameter name.

Resource keys are prefixed (`synth`, `synth_mlflow`, `synth_warehouse`) so that they never collide
with the resources of the Dagster project the plugin is added to.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import dagster as dg
from pydantic import Field

from synth_platform.lib.home import SynthHome
from synth_platform.lib.warehouse import Attachment, Warehouse, warehouse_from_profile


class SynthHomeResource(dg.ConfigurableResource):
    """Where synth_platform keeps its state, and the project-level settings of the gates."""

    root: str = Field(description="State home: private zone, MLflow store, public store.")
    expectations_dir: str | None = Field(
        default=None,
        description="Folder of your hand-written Great Expectations suites "
        "(<table>.<kind>.json), used as written. A table's other suites are generated under "
        "<root>/private/suites from the current real rows at each refresh.",
    )
    public_dir: str | None = Field(
        default=None,
        description="Public store location (default: <root>/public). Give consumers only this.",
    )
    keep_releases: int | None = Field(
        default=None, ge=1, description="Releases kept per table (None keeps all)."
    )

    @property
    def suites(self) -> Path | None:
        """The hand-written suites folder, if any."""
        return Path(self.expectations_dir) if self.expectations_dir else None

    @property
    def home(self) -> SynthHome:
        return SynthHome(Path(self.root), public=Path(self.public_dir) if self.public_dir else None)


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking: a SQLite store under the state home by default, or any server URI."""

    tracking_uri: str = Field(description="e.g. sqlite:///.../mlflow.db or http://mlflow:5000")
    ui_url: str = Field(
        default="http://127.0.0.1:5000",
        description="Base URL of the MLflow UI, for links in Dagster (`mlflow ui` or the "
        "tracking server itself).",
    )

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """The run's page in the MLflow UI."""
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def artifact_url(self, experiment_id: str, run_id: str, path: str) -> str:
        """An artifact of the run, opened in the MLflow UI's artifact view (HTML is rendered)."""
        return f"{self.run_url(experiment_id, run_id)}/artifactPath/{quote(path)}"


class AttachmentConfig(dg.Config):
    """A database attached next to the warehouse (dbt-duckdb's `attach:` entry)."""

    path: str
    alias: str | None = None
    type: str | None = None
    read_only: bool = True


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse holding the dbt models: read from the dbt profile at run time.

    By default the warehouse file and its attachments are whatever the dbt profile's target
    says, rendered by dbt's own loader in the run's environment (the same environment in which
    dagster-dbt runs `dbt build`). Set `path` (and `attach`) to read another file instead.
    """

    dbt_project_dir: str = Field(description="The dbt project whose profile names the warehouse.")
    profiles_dir: str | None = Field(
        default=None,
        description="Folder of profiles.yml (default as dbt: DBT_PROFILES_DIR, the project "
        "folder, then ~/.dbt).",
    )
    profile: str | None = Field(default=None, description="Profile name (default: the project's).")
    target: str | None = Field(default=None, description="Target name (default: the profile's).")
    path: str | None = Field(
        default=None, description="A DuckDB file to read instead of the profile's warehouse."
    )
    attach: list[AttachmentConfig] = Field(
        default_factory=list, description="Databases to attach when `path` is set."
    )

    def warehouse(self) -> Warehouse:
        """The warehouse to read (read-only) with its attachments."""
        if self.path:
            return Warehouse(
                path=Path(self.path).expanduser().resolve(),
                attach=tuple(
                    Attachment(path=a.path, alias=a.alias, type=a.type, read_only=a.read_only)
                    for a in self.attach
                ),
            )
        return warehouse_from_profile(
            project_dir=Path(self.dbt_project_dir),
            profiles_dir=Path(self.profiles_dir) if self.profiles_dir else None,
            profile=self.profile,
            target=self.target,
        )
