"""`build_synthetic_definitions`: the factory behind `SyntheticTwinsComponent`.

It reads the user's dbt manifest, finds the models whose meta has a `synthetic` block, and adds
their synthetic lifecycle downstream of the asset keys that the user's own dbt assets already
have (dagster-dbt's translation). It never builds a second copy of the dbt assets.

dagster-dbt is imported when the factory runs (the project that calls it has imported it
already); `import synth_platform` stays cheap for tools that only list components.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg

from synth_platform.defs.groups import group_definitions
from synth_platform.defs.resources import (
    AttachmentConfig,
    MlflowResource,
    SynthHomeResource,
    WarehouseResource,
)
from synth_platform.defs.tables import WAREHOUSE_POOL, Wiring, table_definitions
from synth_platform.lib.errors import ProjectError
from synth_platform.lib.home import SynthHome
from synth_platform.lib.plan import groups_from_specs
from synth_platform.lib.specs import ModelSpec, specs_from_manifest

if TYPE_CHECKING:
    from dagster_dbt import DagsterDbtTranslator, DbtProject

DEFAULT_JOB = "synthetic_refresh"


def preload_modules(job_module: str | None, explicit: list[str] | None = None) -> list[str]:
    """What the forkserver of :data:`PRELOADED_EXECUTOR` imports: the modules listed in the
    run config if any, else what Dagster preloads by default (the job's own module: your
    code location, so a ``built_once_per_forkserver`` definitions function there is built
    once) and `synth_platform.preload` (the libraries the steps use)."""
    if explicit is not None:
        return list(explicit)
    return [*([job_module] if job_module else []), "synth_platform.preload"]


@dg.executor(
    name="synth_multiprocess_preloaded",
    config_schema=dg.multiprocess_executor.config_schema,
    requirements=dg.multiple_process_executor_requirements(),
)
def PRELOADED_EXECUTOR(init_context: dg.InitExecutorContext):  # noqa: N802 - a definition
    """`job_executor: forkserver`: Dagster's multiprocess executor, steps forked from a server
    that preloaded your code location's module and the libraries the steps use (see
    :func:`preload_modules`). `start_method: spawn` in the run config is honoured."""
    config = dict(init_context.executor_config)
    start = config.get("start_method") or {"forkserver": {}}
    if "forkserver" in start:
        chosen = dict(start["forkserver"] or {})
        get_module = getattr(init_context.job, "get_module", None)
        chosen["preload_modules"] = preload_modules(
            get_module() if callable(get_module) else None, chosen.get("preload_modules")
        )
        config["start_method"] = {"forkserver": chosen}
    return dg.multiprocess_executor.executor_creation_fn(
        dg.InitExecutorContext(
            job=init_context.job, executor_def=dg.multiprocess_executor,
            executor_config=config, instance=init_context.instance,
        )
    )  # fmt: skip


DEFAULT_CRON = "0 3 * * *"
DEFAULT_GROUP_PREFIX = "synthetic_"


def _dbt_executable() -> str:
    """The dbt next to this interpreter (a venv's bin/ need not be on PATH), else PATH's."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def _newest_source_mtime(project_dir: Path) -> float:
    files = [*project_dir.glob("models/**/*"), project_dir / "dbt_project.yml"]
    return max((f.stat().st_mtime for f in files if f.is_file()), default=0.0)


def ensure_manifest(project: DbtProject) -> Path:
    """dbt's manifest of ``project``, re-parsed when missing or older than the models' files.

    Opting a model in is a .yml edit; re-parsing on the next load (a `dagster dev` reload or a
    new run) is what makes its synthetic assets appear without any Python change. A packaged
    project (no model files next to it) uses its manifest as it is.
    """
    manifest = Path(project.manifest_path).resolve()
    project_dir = Path(project.project_dir).resolve()
    if manifest.exists() and manifest.stat().st_mtime >= _newest_source_mtime(project_dir):
        return manifest
    # dbt writes its files in place: parse into a folder of this call's own and move the
    # manifest in with one rename, so that processes loading the definitions at the same time
    # (a code server and a run worker, parallel test workers) never read a half-written one.
    manifest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".parse-", dir=manifest.parent))
    try:
        partial = manifest.parent / "partial_parse.msgpack"  # dbt's cache: parse faster
        if partial.exists():
            shutil.copy2(partial, scratch / partial.name)
        args = [_dbt_executable(), "parse", "--quiet", "--target-path", str(scratch)]
        profiles_dir = _profiles_dir(project)
        if profiles_dir:
            args += ["--profiles-dir", str(profiles_dir)]
        if project.profile:
            args += ["--profile", project.profile]
        if project.target:
            args += ["--target", project.target]
        proc = subprocess.run(args, cwd=project_dir, capture_output=True, text=True)
        parsed = scratch / manifest.name
        if proc.returncode != 0 or not parsed.exists():
            raise ProjectError(
                f"`dbt parse` failed in {project_dir}, so the opted-in models cannot be read; "
                f"fix the dbt project (dbt's output follows):\n{proc.stdout[-4000:]}"
                f"{proc.stderr[-4000:]}"
            )
        if (scratch / partial.name).exists():
            os.replace(scratch / partial.name, partial)
        os.replace(parsed, manifest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return manifest


def _profiles_dir(project: DbtProject) -> Path | None:
    """The folder of profiles.yml dbt will use: the project's, when it holds one; else None
    (dbt's own default: DBT_PROFILES_DIR, then ~/.dbt). DbtProject defaults it to the project
    folder even when no profiles.yml is there."""
    d = Path(project.profiles_dir).resolve() if project.profiles_dir else None
    return d if d is not None and (d / "profiles.yml").exists() else None


def _as_project(dbt_project: DbtProject | str | os.PathLike[str]) -> DbtProject:
    from dagster_dbt import DbtProject

    if isinstance(dbt_project, DbtProject):
        return dbt_project
    path = Path(dbt_project).resolve()
    if not (path / "dbt_project.yml").exists():
        raise ProjectError(
            f"{path} is not a dbt project (no dbt_project.yml); set `dbt_project` to the "
            "folder of your dbt project."
        )
    return DbtProject(path)


def _model_keys(
    specs: Sequence[ModelSpec],
    manifest: Mapping[str, Any],
    *,
    dbt_assets: Sequence[dg.AssetsDefinition] | None,
    translator: DagsterDbtTranslator | None,
    asset_key_prefix: Sequence[str],
) -> dict[str, dg.AssetKey]:
    """The asset key of each opted-in model as the user's dbt assets name it."""
    from dagster_dbt import DagsterDbtTranslator, get_asset_key_for_model

    if dbt_assets:
        return {m.name: get_asset_key_for_model(list(dbt_assets), m.name) for m in specs}
    translator = translator or DagsterDbtTranslator()
    nodes = manifest.get("nodes", {})
    keys = {}
    for m in specs:
        key = translator.get_asset_key(nodes[m.unique_id])
        keys[m.name] = key.with_prefix(list(asset_key_prefix)) if asset_key_prefix else key
    return keys


def build_synthetic_definitions(
    *,
    dbt_project: DbtProject | str | os.PathLike[str],
    home: str | os.PathLike[str] | None = None,
    dbt_assets: Sequence[dg.AssetsDefinition] | None = None,
    dagster_dbt_translator: DagsterDbtTranslator | None = None,
    asset_key_prefix: Sequence[str] = (),
    select: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    warehouse_path: str | os.PathLike[str] | None = None,
    warehouse_attach: Sequence[Mapping[str, Any]] = (),
    public_dir: str | os.PathLike[str] | None = None,
    expectations_dir: str | os.PathLike[str] | None = None,
    mlflow_tracking_uri: str | None = None,
    mlflow_ui_url: str = "http://127.0.0.1:5000",
    keep_releases: int | None = None,
    group_prefix: str = DEFAULT_GROUP_PREFIX,
    job_name: str | None = DEFAULT_JOB,
    cron: str | None = DEFAULT_CRON,
    pool: str | None = WAREHOUSE_POOL,
    automation: bool = False,
    refresh_upstream: bool = False,
    job_executor: Literal["forkserver"] | None = None,
) -> dg.Definitions:
    """Synthetic twins of the dbt models that opt in with `meta.synthetic`.

    Per table `<t>`: `<t>_split → <t>_synthesizer → <t>_synthetic` (+ blocking fidelity, privacy
    and validity checks) `→ <t>_published`, with `<t>_split` depending on the model's existing
    asset key; tables linked by dbt `relationships` tests are synthesized as one group.

    Args:
        dbt_project: The user's dbt project (a `DbtProject` or its directory). Its manifest is
            read (`dbt parse` runs when it is missing or stale) and its profile names the
            DuckDB warehouse the real tables are read from.
        home: State home: private work files, the MLflow store, the public store and generated
            suites. Default: `SYNTH_HOME`, else `.synth/` beside the dbt project.
        dbt_assets: The user's `@dbt_assets` definitions; when given, model keys come from them
            (`get_asset_key_for_model`), which respects any custom translator they use.
        dagster_dbt_translator: Translator for model keys when `dbt_assets` is not given
            (default: dagster-dbt's, which honours `meta.dagster.asset_key`).
        asset_key_prefix: Prefix added to every translated model key (for a dbt component with
            a key prefix).
        select: Only these opted-in models (default: all of them).
        exclude: Opted-in models to leave out.
        warehouse_path: Read this DuckDB file instead of the dbt profile's warehouse.
        warehouse_attach: Databases to attach with `warehouse_path` (dbt-duckdb `attach:`).
        public_dir: Public store (default: `SYNTH_PUBLIC_DIR` if set, else `<home>/public`):
            the only folder consumers get.
        expectations_dir: Your hand-written Great Expectations suites (`<table>.<kind>.json`,
            used as written); every other suite is generated into `<home>/private/suites`
            from the current real rows at each refresh (default: none hand-written).
        mlflow_tracking_uri: MLflow store (default: SQLite under `<home>/mlflow`).
        mlflow_ui_url: Base URL of the MLflow UI, for the links shown in Dagster.
        keep_releases: Releases kept per table (default: all).
        group_prefix: Dagster group of a table or table group: `<prefix><table>`.
        job_name: Name of the job refreshing every twin (None: no job). It reads the dbt
            models as they are in the warehouse; your dbt job or schedule keeps building them.
        cron: Cron of the refresh schedule (stopped until switched on; None: no schedule).
        pool: Concurrency pool of the steps reading the warehouse (DuckDB: one writer per file).
        automation: Declarative automation instead of (or beside) the schedule: every twin asset
            gets `AutomationCondition.eager()`, so a new materialization of a dbt model
            refreshes its twin (the synthesizer step skips what is unchanged) once the
            automation sensor (`default_automation_condition_sensor`) is on.
        refresh_upstream: The refresh job also materializes everything upstream of the twins
            (your dbt models and their sources) before them, in the same run. Off by default:
            the warehouse belongs to your dbt job, DuckDB has one writer per file, and a
            refresh with nothing changed then finishes in seconds instead of rebuilding dbt.
        job_executor: `"forkserver"`: the refresh job runs on Dagster's multiprocess executor
            with every step forked from a server that has imported your code location's
            module and `synth_platform.preload` (each step starts in a fraction of a second
            instead of importing the libraries again: a 6-table no-op refresh through `dg
            launch` took 25 s instead of 52 s; see :func:`preload_modules`).
            Default (None): the job uses your Definitions' executor (Dagster's default:
            multiprocess, spawn); a job-level executor would override yours.

    Returns:
        Definitions with the assets, checks, resources (`synth`, `synth_mlflow`,
        `synth_warehouse`), the refresh job and its schedule.

    Raises:
        SpecError: a `meta.synthetic` block is invalid (the message names model and field).
        ProjectError: the dbt project cannot be parsed, or `select`/`exclude` name a model
            that is not opted in.
    """
    project = _as_project(dbt_project)
    project_dir = Path(project.project_dir).resolve()
    root = Path(home or os.environ.get("SYNTH_HOME") or project_dir.parent / ".synth").resolve()
    public_dir = public_dir or os.environ.get("SYNTH_PUBLIC_DIR") or None
    state = SynthHome(root, public=Path(public_dir).resolve() if public_dir else None)
    manifest = json.loads(ensure_manifest(project).read_text())
    specs = specs_from_manifest(manifest)
    known = {m.name for m in specs}
    for name in [*(select or ()), *exclude]:
        if name not in known:
            raise ProjectError(
                f"synth_platform `select`/`exclude` names '{name}', which is not an opted-in dbt "
                f"model (opted in: {sorted(known)}); add a `meta.synthetic` block to the model "
                "or fix the name."
            )
    specs = [m for m in specs if (select is None or m.name in select) and m.name not in exclude]
    upstream = _model_keys(
        specs,
        manifest,
        dbt_assets=dbt_assets,
        translator=dagster_dbt_translator,
        asset_key_prefix=asset_key_prefix,
    )
    by_name = {m.name: m for m in specs}

    assets: list[dg.AssetsDefinition] = []
    checks: list[dg.AssetChecksDefinition] = []
    condition = dg.AutomationCondition.eager() if automation else None
    # Models related by dbt `relationships` tests are synthesized together (errors name both
    # models of a cycle or of a reference to a model that is not opted in).
    groups = groups_from_specs(specs)
    grouped = {t for g in groups for t in g.tables}
    for group in groups:
        a, c = group_definitions(
            group,
            by_name,
            upstream,
            wiring=Wiring(group=f"{group_prefix}{group.label}", pool=pool, automation=condition),
        )
        assets += a
        checks += c
    for model in specs:
        if model.name in grouped:
            continue
        a, c = table_definitions(
            model,
            upstream[model.name],
            wiring=Wiring(group=f"{group_prefix}{model.name}", pool=pool, automation=condition),
        )
        assets += a
        checks += c

    jobs, schedules = [], []
    if job_name and assets:
        ours = dg.AssetSelection.assets(*assets)
        refresh = dg.define_asset_job(
            job_name,
            executor_def=PRELOADED_EXECUTOR if job_executor == "forkserver" else None,
            # With refresh_upstream: everything upstream too (the user's dbt models and
            # sources), with whole steps where an upstream multi-asset cannot run a subset.
            selection=ours.upstream().required_multi_asset_neighbors()
            if refresh_upstream
            else ours,
            description=(
                "dbt models → split → train → sample → gates → publish"
                if refresh_upstream
                else "split → train → sample → gates → publish, from the dbt models as they are"
                " in the warehouse"
            )
            + ", every synthetic twin; tables with nothing changed are skipped. One table: "
            "`dg launch --assets 'tag:synth_platform/table=<t>'`.",
        )
        jobs.append(refresh)
        if cron:
            schedules.append(
                dg.ScheduleDefinition(
                    name=f"{job_name}_schedule",
                    job=refresh,
                    cron_schedule=cron,
                    description="Refresh and republish every synthetic twin.",
                )
            )
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        resources={
            "synth": SynthHomeResource(
                root=str(root),
                expectations_dir=str(Path(expectations_dir).resolve())
                if expectations_dir
                else None,
                public_dir=str(state.public_dir),
                keep_releases=keep_releases,
            ),
            "synth_mlflow": MlflowResource(
                tracking_uri=mlflow_tracking_uri or state.mlflow_tracking_uri, ui_url=mlflow_ui_url
            ),
            "synth_warehouse": WarehouseResource(
                dbt_project_dir=str(project_dir),
                profiles_dir=str(profiles_dir)
                if (profiles_dir := _profiles_dir(project))
                else None,
                profile=project.profile,
                target=project.target,
                path=str(Path(warehouse_path).resolve()) if warehouse_path else None,
                attach=[AttachmentConfig(**dict(a)) for a in warehouse_attach],
            ),
        },
    )
