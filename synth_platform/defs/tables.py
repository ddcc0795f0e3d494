"""Per opted-in dbt model: split → synthesizer → synthetic (+3 blocking checks) → published.

The builders are shared with `groups.py`, which wires tables synthesized as a group.

Building the definitions imports no training, evaluation or tracking library: the asset and check
bodies import `lifecycle` (pandas, SDV, scikit-learn, SciPy, MLflow, Great Expectations) when they
run. A code location loads fast, and so does each step process of the multiprocess executor,
which loads the definitions again; see `synth_platform.preload` for the libraries themselves."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg

from synth_platform.defs.resources import MlflowResource, SynthHomeResource, WarehouseResource
from synth_platform.lib import refresh
from synth_platform.lib.plan import GATE_KINDS, ParentKey
from synth_platform.lib.specs import ModelSpec

if TYPE_CHECKING:
    from synth_platform.lib.lifecycle import CandidateResult
    from synth_platform.lib.publish import Release

#: Default concurrency pool of the steps that read the DuckDB warehouse (one writer per file).
WAREHOUSE_POOL = "duckdb_warehouse"


#: Dagster's ``dagster/priority`` per kind of step. When more steps are ready than a run has
#: processes (the multiprocess executor's ``max_concurrent``), Dagster starts the higher first:
#: longest remaining path first (splits, fits, samples), then the gates longest first, then
#: publication. Without it, Dagster took the steps of the first tables in plan order, and a
#: 4-table run's last table started its privacy gate (its longest step) once the other tables
#: were done: one core busy for its last ~5 s (4 x 1M rows, 2 cores). Every executor follows
#: it: the in-process one now runs every split, then every fit, and so on, publishing at the
#: end (it did so before too, for the example). Dagster also orders a concurrency pool's
#: waiting claims by it: a split (6) waiting for `duckdb_warehouse` goes before another run's
#: dbt step (0) waiting for the same pool.
STEP_PRIORITY = {
    "split": 6, "synthesizer": 5, "synthetic": 4, "privacy": 3, "fidelity": 2, "cross_table": 2,
    "validity": 1, "cardinality": 1, "integrity": 1, "published": 0,
}  # fmt: skip


def priority(kind: str) -> dict[str, str]:
    """The op tags that give a step of this kind its :data:`STEP_PRIORITY`."""
    return {"dagster/priority": str(STEP_PRIORITY[kind])}


@dataclass(frozen=True)
class Wiring:
    """How the assets of one table are named and placed (set by the factory)."""

    group: str
    pool: str | None = WAREHOUSE_POOL
    #: Extra tags on every asset (a table group's `synth_platform/group`, for selection).
    tags: tuple[tuple[str, str], ...] = ()
    #: Declarative automation of every asset (None: run by the job and its schedule only).
    automation: dg.AutomationCondition | None = None


def run_tags(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, key: str) -> dict:
    """Tags that tie an MLflow run to the Dagster run and asset that produced it."""
    return {"dagster.run_id": context.run.run_id, "dagster.asset_key": key}


def column_schema(model: ModelSpec, types: dict[str, str] | None = None) -> dg.TableSchema:
    """`dagster/column_schema` of a synthetic table: dbt descriptions, faked-PII tags.

    Args:
        model: The opted-in model (its dbt columns, descriptions and PII).
        types: Column -> type as written (the candidate's Parquet schema); without it, the
            columns and types documented in dbt (excluded columns left out).
    """
    pii = model.pii
    names = (
        list(types)
        if types is not None
        else [c for c in model.columns if c not in set(model.spec.exclude)]
    )
    cols = []
    for name in names:
        info = model.columns.get(name)
        tags = (
            {"synth_platform/pii": "faked", "synth_platform/faker": pii[name]}
            if name in pii
            else {}
        )
        cols.append(
            dg.TableColumn(
                name=name,
                type=(types or {}).get(name) or (info.data_type if info else None) or "unknown",
                description=(info.description if info else None) or None,
                tags=tags,
            )
        )
    return dg.TableSchema(columns=cols)


def parquet_types(path) -> dict[str, str]:
    """Column -> Arrow type of a Parquet file (read from its footer only)."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    return {f.name: str(f.type) for f in schema}


GATE_DESCRIPTIONS = {
    "fidelity": "Column shapes (KS/TV complement) and pair trends (correlation/contingency "
    "similarity) vs the real table, rolled up to one quality score; utility (train on "
    "synthetic, test on the real holdout) for tables with a target. Blocks publication "
    "below the thresholds.",
    "privacy": "No synthetic row equal to a training row; DCR share train-vs-holdout near "
    "50%; nearest-neighbour distance ratio; no source PII value anywhere in the output; "
    "attack-based singling-out/linkability/inference risks. Blocks publication.",
    "validity": "Schema, column types, key uniqueness, ranges and allowed categories "
    "profiled from the real rows, and the diagnostic (boundary/category adherence, key "
    "uniqueness, table structure) at 1.0; blocks publication on any violation.",
}

#: Scores shown (and plotted over time by the UI) on each published materialization.
HEADLINE = {
    "fidelity": ("overall", "column_shapes", "column_pair_trends", "utility"),
    "privacy": ("dcr_share", "nndr_median", "exact_copies_train", "baseline_protection"),
    "validity": ("boundary_adherence", "category_adherence", "key_uniqueness"),
}


def _md_table(rows: Sequence[dict]) -> dg.MetadataValue:
    import pandas as pd

    return dg.MetadataValue.md(pd.DataFrame(rows).to_markdown(index=False) if rows else "none")


def _headline_scores(scores: dict) -> dict[str, dg.MetadataValue]:
    """Float metadata per headline metric: the asset's Plots tab charts them per release."""
    out = {}
    for kind, names in HEADLINE.items():
        metrics = (scores.get(kind) or {}).get("metrics", {})
        for name in names:
            value = (metrics.get(name) or {}).get("value")
            if isinstance(value, int | float) and value == value:  # skip NaN
                out[f"{kind}/{name}"] = dg.MetadataValue.float(float(value))
    return out


def mlflow_links(
    mlflow: MlflowResource, run_id: str | None, *, artifact: str | None = None, name: str
) -> dict[str, dg.MetadataValue]:
    """An http link into the MLflow UI: the run page, or one artifact in its artifact view."""
    if not run_id:
        return {}
    from synth_platform.lib.tracking import experiment_of

    exp = experiment_of(tracking_uri=mlflow.tracking_uri, run_id=run_id)
    url = mlflow.artifact_url(exp, run_id, artifact) if artifact else mlflow.run_url(exp, run_id)
    return {name: dg.MetadataValue.url(url)}


def split_asset(
    model: ModelSpec,
    upstream: dg.AssetKey,
    *,
    wiring: Wiring,
    parents: tuple[ParentKey, ...] = (),
    references: Mapping[str, str] | None = None,
) -> dg.AssetsDefinition:
    """`<t>_split`: the seeded train/holdout split (after its parents' splits in a group).

    ``references`` (foreign-key column -> reference table) keep their real values; the split
    waits for the reference tables' splits, which the group gates read."""
    t = model.name
    references = dict(references or {})
    deps = [
        upstream,
        *dict.fromkeys(
            dg.AssetKey(f"{p}_split") for p in [*(x.parent for x in parents), *references.values()]
        ),
    ]
    follows = (
        " Rows follow their parent rows ("
        + ", ".join(f"`{p.column}` -> `{p.parent}`" for p in parents)
        + "), so held-out families stay together."
        if parents
        else ""
    )

    @dg.asset(
        key=dg.AssetKey(f"{t}_split"), deps=deps, group_name=wiring.group,
        kinds={"duckdb", "parquet"}, pool=wiring.pool, code_version=refresh.asset_code_version(model),
        automation_condition=wiring.automation, op_tags=priority("split"),
        tags={"synth_platform/table": t, **dict(wiring.tags)},
        description=f"Seeded, stable train/holdout split of `{t}` (private; holdout never "
        f"trains).{follows}",
    )  # fmt: skip
    def split(synth: SynthHomeResource, synth_warehouse: WarehouseResource) -> dg.MaterializeResult:
        from synth_platform.lib import lifecycle

        r = lifecycle.split_table(
            home=synth.home.ensure(),
            warehouse=synth_warehouse.warehouse(),
            model=model,
            parents=parents,
            reference_keys=tuple(references),
        )
        m = r.metadata
        kinds = [{"column": c, "treated_as": k} for k, cols in (
            ("key", [m.primary_key] if m.primary_key else []),
            ("foreign key (re-keyed)", list(m.foreign_keys)),
            ("foreign key into reference data (real values)", list(references)),
            ("numeric", [c for c in m.numeric if c not in references]),
            ("datetime", m.datetime), ("categorical", [c for c in m.categorical if c not in references]),
            ("pii (faked)", m.pii),
        ) for c in cols]  # fmt: skip
        return dg.MaterializeResult(
            metadata={
                "train_rows": r.train_rows,
                "holdout_rows": r.holdout_rows,
                "source_fingerprint": r.source_fingerprint,
                "split": "kept: same source, spec and code as the last split"
                if r.unchanged
                else "written",
                "columns": _md_table(kinds),
                "dagster/row_count": r.train_rows + r.holdout_rows,
            },
            data_version=dg.DataVersion(r.source_fingerprint[:16]),
        )

    return split


class RefreshConfig(dg.Config):
    """Run config of a synthesizer step (launchpad: `ops: {<t>_synthesizer: {config: ...}}`)."""

    force: bool = False
    """Refit, resample and republish even when nothing changed since the latest release."""


def unchanged_observation(
    context: dg.AssetExecutionContext, key: dg.AssetKey, unchanged: list[refresh.Unchanged]
) -> dg.AssetObservation:
    """What a skipped refresh records: the run log line and an observation on the asset."""
    line = refresh.describe(unchanged)
    context.log.info(
        f"Unchanged, so nothing is refitted, resampled or republished: {line}. "
        "Downstream steps are skipped. (Set `force: true` in this step's config to refresh anyway.)"
    )
    return dg.AssetObservation(
        asset_key=key,
        metadata={
            "refresh": "skipped: unchanged since the latest release",
            "unchanged": dg.MetadataValue.md(
                "\n".join(f"- {refresh.describe([u])}" for u in unchanged)
            ),
            "refresh_keys": dg.MetadataValue.json({u.table: u.refresh_key for u in unchanged}),
        },
    )


def synthesizer_asset(model: ModelSpec, *, wiring: Wiring) -> dg.AssetsDefinition:
    """`<t>_synthesizer`: the single-table fit, one MLflow run; no materialization (and every
    downstream step skipped) when the latest release was made from the same inputs."""
    t = model.name
    key = dg.AssetKey(f"{t}_synthesizer")

    @dg.asset(
        key=key, deps=[dg.AssetKey(f"{t}_split")], group_name=wiring.group,
        kinds={"scikitlearn" if model.spec.synthesizer == "cart" else "sdv", "mlflow"},
        tags={"synth_platform/table": t}, code_version=refresh.asset_code_version(model),
        output_required=False, automation_condition=wiring.automation,
        op_tags=priority("synthesizer"),
        description=(
            f"Reference data: `{t}` is declared public (`mode: reference`) and published as it "
            "is; this step records the declaration in an MLflow run (nothing is fitted). "
            if model.is_reference
            else f"`{model.spec.synthesizer}` synthesizer fitted on `{t}` training rows; one "
            "MLflow run per fit with the model registered. "
        )
        + "Skipped (with everything downstream) when source, spec, suites and code are those "
        "of the latest release.",
    )  # fmt: skip
    def synthesizer(
        context: dg.AssetExecutionContext,
        config: RefreshConfig,
        synth: SynthHomeResource,
        synth_mlflow: MlflowResource,
    ):
        from synth_platform.lib import lifecycle

        home = synth.home.ensure()
        inputs = lifecycle.table_refresh_inputs(
            home=home, model=model, expectations_dir=synth.suites
        )
        same = refresh.unchanged_release(home.public_dir, t, refresh.refresh_key(inputs))
        if same is not None and not config.force:
            yield unchanged_observation(context, key, [same])
            return
        r = lifecycle.train_table(
            home=home,
            model=model,
            tracking_uri=synth_mlflow.tracking_uri,
            run_tags=run_tags(context, f"{t}_synthesizer"),
            refresh_inputs=inputs,
            progress=context.log.info,
        )
        yield dg.MaterializeResult(
            metadata={
                "mlflow_run": dg.MetadataValue.url(synth_mlflow.run_url(r.experiment_id, r.run_id)),
                "mlflow_run_id": r.run_id,
                "mlflow_tracking_uri": synth_mlflow.tracking_uri,
                "registered_model": f"{r.model_name} v{r.model_version}"
                if r.model_name
                else "none: reference data, published as it is",
                "synthesizer": "reference" if model.is_reference else model.spec.synthesizer,
                "fit_seconds": round(r.fit_seconds, 3),
                "train_rows": r.rows,
                "source_fingerprint": r.source_fingerprint,
                "refresh_key": r.refresh_key or "",
            },
            data_version=dg.DataVersion(r.refresh_key[:16]) if r.refresh_key else None,
        )

    return synthesizer


def candidate_metadata(model: ModelSpec, r: "CandidateResult") -> dict[str, Any]:
    """Metadata of a `<t>_synthetic` materialization. No rows: the candidate has not passed
    its gates yet (a preview appears on `<t>_published`)."""
    return {
        "candidate_id": r.candidate_id,
        "dagster/row_count": r.rows,
        "dagster/column_schema": column_schema(model, parquet_types(r.path)),
        "seed": r.seed,
        "sample_seconds": round(r.sample_seconds, 3),
        "mlflow_run_id": r.run_id,
    }


def synthetic_asset(model: ModelSpec, *, wiring: Wiring) -> dg.AssetsDefinition:
    """`<t>_synthetic`: the seeded candidate sample (private until the gates pass)."""
    t = model.name

    @dg.asset(
        key=dg.AssetKey(f"{t}_synthetic"), deps=[dg.AssetKey(f"{t}_synthesizer")],
        group_name=wiring.group, kinds={"parquet"}, tags={"synth_platform/table": t},
        metadata={"dagster/column_schema": column_schema(model)},
        code_version=refresh.asset_code_version(model), automation_condition=wiring.automation,
        op_tags=priority("synthetic"),
        description=f"Seeded synthetic sample of `{t}`, written in batches: a private "
        "candidate until every blocking check passes.",
    )  # fmt: skip
    def synthetic(
        context: dg.AssetExecutionContext, synth: SynthHomeResource
    ) -> dg.MaterializeResult:
        from synth_platform.lib import lifecycle

        r = lifecycle.sample_table(home=synth.home.ensure(), model=model, progress=context.log.info)
        return dg.MaterializeResult(metadata=candidate_metadata(model, r))

    return synthetic


def gate_checks(model: ModelSpec) -> list[dg.AssetChecksDefinition]:
    """The three blocking per-table checks on `<t>_synthetic`."""
    t = model.name
    cand_key = dg.AssetKey(f"{t}_synthetic")

    def make_check(kind: str) -> dg.AssetChecksDefinition:
        @dg.asset_check(
            asset=cand_key, name=f"{t}_{kind}", blocking=True,
            description=GATE_DESCRIPTIONS[kind], op_tags=priority(kind),
        )  # fmt: skip
        def check(
            context: dg.AssetCheckExecutionContext,
            synth: SynthHomeResource,
            synth_mlflow: MlflowResource,
        ) -> dg.AssetCheckResult:
            from synth_platform.lib import lifecycle

            home = synth.home.ensure()
            r = lifecycle.evaluate_gate(
                home=home,
                model=model,
                kind=kind,
                expectations_dir=synth.suites,
                tracking_uri=synth_mlflow.tracking_uri,
                progress=context.log.info,
            )
            metadata = {
                "score": dg.MetadataValue.float(r.score),
                "threshold": dg.MetadataValue.float(r.threshold if r.threshold is not None else 0),
                **{k: v for k, v in r.metrics.items() if isinstance(v, int | float)},
                "checks": _md_table(r.checks),
                "suites": dg.MetadataValue.md("\n".join(f"- `{p}`" for p in r.suite_paths)),
                "candidate_id": r.candidate_id,
            }
            if r.report_uri:
                metadata.update(
                    mlflow_links(
                        synth_mlflow, r.run_id, artifact=f"gates/{kind}.json", name="full_result"
                    )
                )
            report = lifecycle.render_evaluation_report(
                home=home, model=model, tracking_uri=synth_mlflow.tracking_uri
            )
            if report is not None:
                path, uri = report
                if uri:
                    metadata.update(
                        mlflow_links(
                            synth_mlflow,
                            r.run_id,
                            artifact="gates/report.html",
                            name="evaluation_report",
                        )
                    )
                metadata["evaluation_report_path"] = dg.MetadataValue.path(str(path))
            if r.notes:  # the gate's score beside SDMetrics' plain QualityReport, and why
                metadata["vs_sdmetrics_quality_report"] = dg.MetadataValue.md(
                    "\n".join(f"- {n}" for n in r.notes)
                )
            if r.failures:
                metadata["failures"] = dg.MetadataValue.md(
                    "\n".join(f"- {f}" for f in r.failures[:50])
                )
            return dg.AssetCheckResult(
                passed=r.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata=metadata,
                description=(
                    f"{kind}: {r.score:.4g} vs threshold {r.threshold}"
                    + ("" if r.passed else f" — FAILED: {'; '.join(r.failures[:3])}")
                ),
            )

        return check

    return [make_check(k) for k in GATE_KINDS]


def release_metadata(
    synth: SynthHomeResource, mlflow: MlflowResource, model: ModelSpec, release: "Release"
) -> dict[str, Any]:
    """Metadata of a `<t>_published` materialization (its rows passed every gate)."""
    import pandas as pd

    t = model.name
    catalog = synth.home.public_dir / "catalog.duckdb"
    preview = pd.read_parquet(release.data).head(5)
    return {
        "version": release.version,
        "dagster/row_count": release.manifest["rows"],
        "dagster/column_schema": column_schema(model, parquet_types(release.data)),
        "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
        "data": dg.MetadataValue.path(str(release.data)),
        "catalog": dg.MetadataValue.path(str(catalog)),
        "query": dg.MetadataValue.md(
            f"```sql\n-- duckdb -readonly {catalog}\nselect * from {t} limit 10;\n"
            f"select version, published_at, scores from releases "
            f"where table_name = '{t}' and is_latest;\n```"
        ),
        "scores": dg.MetadataValue.json(release.manifest["scores"]),
        "mlflow_run_id": release.manifest["mlflow_run_id"],
        **_headline_scores(release.manifest["scores"]),
        **mlflow_links(mlflow, release.manifest.get("mlflow_run_id"), name="mlflow_run"),
    }


def published_asset(model: ModelSpec, *, wiring: Wiring) -> dg.AssetsDefinition:
    """`<t>_published`: the versioned public release, written only when every gate passed."""
    t = model.name

    @dg.asset(
        key=dg.AssetKey(f"{t}_published"), deps=[dg.AssetKey(f"{t}_synthetic")],
        group_name=wiring.group, kinds={"parquet", "duckdb"}, tags={"synth_platform/table": t},
        metadata={"dagster/column_schema": column_schema(model)},
        code_version=refresh.asset_code_version(model), automation_condition=wiring.automation,
        op_tags=priority("published"),
        description=f"Published synthetic `{t}`: a versioned, immutable release in the public "
        "store, written only when every blocking check on the candidate passed.",
    )  # fmt: skip
    def published(synth: SynthHomeResource, synth_mlflow: MlflowResource) -> dg.MaterializeResult:
        from synth_platform.lib import lifecycle

        release = lifecycle.publish_table(
            home=synth.home.ensure(), model=model, keep=synth.keep_releases
        )
        return dg.MaterializeResult(
            metadata=release_metadata(synth, synth_mlflow, model, release),
            data_version=dg.DataVersion(release.version),
        )

    return published


def table_definitions(
    model: ModelSpec, upstream: dg.AssetKey, *, wiring: Wiring
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """Assets and checks of one standalone synthetic table, named after the data they hold."""
    assets = [
        split_asset(model, upstream, wiring=wiring),
        synthesizer_asset(model, wiring=wiring),
        synthetic_asset(model, wiring=wiring),
        published_asset(model, wiring=wiring),
    ]
    return assets, gate_checks(model)
