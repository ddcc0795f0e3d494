"""Per opted-in dbt model: split → synthesizer → synthetic (+3 blocking checks) → published.

The builders are shared with `groups.py`, which wires tables synthesized as a group."""

from collections.abc import Sequence
from typing import Any

import dagster as dg
import pandas as pd

from synth_platform.defs.dbt import WAREHOUSE_POOL
from synth_platform.defs.resources import MlflowResource, SynthHomeResource
from synth_platform.lib import lifecycle
from synth_platform.lib.expectations import GATE_KINDS
from synth_platform.lib.publish import Release
from synth_platform.lib.specs import ModelSpec

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


def _report_link(home, table: str) -> dict[str, dg.MetadataValue]:
    path = lifecycle.paths_for(home, table).report
    return {"evaluation_report": dg.MetadataValue.path(str(path))} if path.exists() else {}


def split_asset(
    model: ModelSpec,
    upstream: dg.AssetKey,
    *,
    group: str,
    parents: tuple[lifecycle.ParentKey, ...] = (),
) -> dg.AssetsDefinition:
    """`<t>_split`: the seeded train/holdout split (after its parents' splits in a group)."""
    t = model.name
    deps = [upstream, *dict.fromkeys(dg.AssetKey(f"{p.parent}_split") for p in parents)]
    follows = (
        " Rows follow their parent rows ("
        + ", ".join(f"`{p.column}` -> `{p.parent}`" for p in parents)
        + "), so held-out families stay together."
        if parents
        else ""
    )

    @dg.asset(
        key=dg.AssetKey(f"{t}_split"), deps=deps, group_name=group, kinds={"duckdb", "parquet"},
        pool=WAREHOUSE_POOL, tags={"synth_platform/table": t},
        description=f"Seeded, stable train/holdout split of `{t}` (private; holdout never "
        f"trains).{follows}",
    )  # fmt: skip
    def split(synth: SynthHomeResource) -> dg.MaterializeResult:
        r = lifecycle.split_table(home=synth.home.ensure(), model=model, parents=parents)
        m = r.metadata
        kinds = [{"column": c, "treated_as": k} for k, cols in (
            ("key", [m.primary_key] if m.primary_key else []),
            ("foreign key (re-keyed)", list(m.foreign_keys)), ("numeric", m.numeric),
            ("datetime", m.datetime), ("categorical", m.categorical), ("pii (faked)", m.pii),
        ) for c in cols]  # fmt: skip
        return dg.MaterializeResult(
            metadata={
                "train_rows": r.train_rows,
                "holdout_rows": r.holdout_rows,
                "source_fingerprint": r.source_fingerprint,
                "columns": _md_table(kinds),
                "dagster/row_count": r.train_rows + r.holdout_rows,
            },
            data_version=dg.DataVersion(r.source_fingerprint[:16]),
        )

    return split


def synthesizer_asset(model: ModelSpec, *, group: str) -> dg.AssetsDefinition:
    """`<t>_synthesizer`: the single-table SDV fit, one MLflow run."""
    t = model.name

    @dg.asset(
        key=dg.AssetKey(f"{t}_synthesizer"), deps=[dg.AssetKey(f"{t}_split")], group_name=group,
        kinds={"sdv", "mlflow"}, tags={"synth_platform/table": t},
        description=f"SDV `{model.spec.synthesizer}` fitted on `{t}` training rows; one MLflow "
        "run per fit with the model registered.",
    )  # fmt: skip
    def synthesizer(synth: SynthHomeResource, mlflow: MlflowResource) -> dg.MaterializeResult:
        r = lifecycle.train_table(
            home=synth.home.ensure(), model=model, tracking_uri=mlflow.tracking_uri
        )
        return dg.MaterializeResult(
            metadata={
                "mlflow_run": dg.MetadataValue.url(mlflow.run_url(r.experiment_id, r.run_id)),
                "mlflow_run_id": r.run_id,
                "mlflow_tracking_uri": mlflow.tracking_uri,
                "registered_model": f"{r.model_name} v{r.model_version}",
                "synthesizer": model.spec.synthesizer,
                "fit_seconds": round(r.fit_seconds, 3),
                "train_rows": r.rows,
                "source_fingerprint": r.source_fingerprint,
            }
        )

    return synthesizer


def candidate_metadata(r: lifecycle.CandidateResult) -> dict[str, Any]:
    """Metadata of a `<t>_synthetic` materialization."""
    preview = pd.read_parquet(r.path).head(5)
    return {
        "candidate_id": r.candidate_id,
        "dagster/row_count": r.rows,
        "seed": r.seed,
        "sample_seconds": round(r.sample_seconds, 3),
        "mlflow_run_id": r.run_id,
        "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
    }


def synthetic_asset(model: ModelSpec, *, group: str) -> dg.AssetsDefinition:
    """`<t>_synthetic`: the seeded candidate sample (private until the gates pass)."""
    t = model.name

    @dg.asset(
        key=dg.AssetKey(f"{t}_synthetic"), deps=[dg.AssetKey(f"{t}_synthesizer")],
        group_name=group, kinds={"parquet"}, tags={"synth_platform/table": t},
        description=f"Seeded synthetic sample of `{t}`, written in batches: a private "
        "candidate until every blocking check passes.",
    )  # fmt: skip
    def synthetic(synth: SynthHomeResource) -> dg.MaterializeResult:
        r = lifecycle.sample_table(home=synth.home.ensure(), model=model)
        return dg.MaterializeResult(metadata=candidate_metadata(r))

    return synthetic


def gate_checks(model: ModelSpec) -> list[dg.AssetChecksDefinition]:
    """The three blocking per-table checks on `<t>_synthetic`."""
    t = model.name
    cand_key = dg.AssetKey(f"{t}_synthetic")

    def make_check(kind: str) -> dg.AssetChecksDefinition:
        @dg.asset_check(
            asset=cand_key, name=f"{t}_{kind}", blocking=True,
            description=GATE_DESCRIPTIONS[kind],
        )  # fmt: skip
        def check(synth: SynthHomeResource, mlflow: MlflowResource) -> dg.AssetCheckResult:
            home = synth.home.ensure()
            r = lifecycle.evaluate_gate(
                home=home,
                model=model,
                kind=kind,
                expectations_dir=synth.expectations_dir,
                tracking_uri=mlflow.tracking_uri,
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
                metadata["full_result"] = dg.MetadataValue.url(r.report_uri)
            report = lifecycle.render_evaluation_report(
                home=home, model=model, tracking_uri=mlflow.tracking_uri
            )
            if report is not None:
                path, uri = report
                metadata["evaluation_report"] = dg.MetadataValue.url(uri or path.as_uri())
                metadata["evaluation_report_path"] = dg.MetadataValue.path(str(path))
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


def release_metadata(synth: SynthHomeResource, t: str, release: Release) -> dict[str, Any]:
    """Metadata of a `<t>_published` materialization."""
    catalog = synth.home.public_dir / "catalog.duckdb"
    return {
        "version": release.version,
        "dagster/row_count": release.manifest["rows"],
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
        **_report_link(synth.home, t),
    }


def published_asset(model: ModelSpec, *, group: str) -> dg.AssetsDefinition:
    """`<t>_published`: the versioned public release, written only when every gate passed."""
    t = model.name

    @dg.asset(
        key=dg.AssetKey(f"{t}_published"), deps=[dg.AssetKey(f"{t}_synthetic")],
        group_name=group, kinds={"parquet", "duckdb"}, tags={"synth_platform/table": t},
        description=f"Published synthetic `{t}`: a versioned, immutable release in the public "
        "store, written only when every blocking check on the candidate passed.",
    )  # fmt: skip
    def published(synth: SynthHomeResource) -> dg.MaterializeResult:
        release = lifecycle.publish_table(
            home=synth.home.ensure(), model=model, keep=synth.keep_releases
        )
        return dg.MaterializeResult(
            metadata=release_metadata(synth, t, release),
            data_version=dg.DataVersion(release.version),
        )

    return published


def table_definitions(
    model: ModelSpec, upstream: dg.AssetKey
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """Assets and checks of one standalone synthetic table, named after the data they hold."""
    group = f"synthetic_{model.name}"
    assets = [
        split_asset(model, upstream, group=group),
        synthesizer_asset(model, group=group),
        synthetic_asset(model, group=group),
        published_asset(model, group=group),
    ]
    return assets, gate_checks(model)
