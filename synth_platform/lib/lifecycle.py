"""The per-table lifecycle as plain functions: split → train → sample → gates → publish.

Each step reads its inputs from, and writes its outputs to, the table's private directory
(`SYNTH_HOME/private/<table>/`), so steps pass file paths rather than DataFrames and can run in
separate processes. The Dagster assets in `synth_platform.defs` are thin calls to these.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth_platform.lib import expectations as gx_suites
from synth_platform.lib.errors import GateFailedError, SourceError
from synth_platform.lib.evaluation import (
    FidelityReport,
    PrivacyReport,
    evaluate_attacks,
    evaluate_diagnostic,
    evaluate_fidelity,
    evaluate_privacy,
    evaluate_utility,
    find_pii_leaks,
)
from synth_platform.lib.extract import read_real_table
from synth_platform.lib.home import SynthHome
from synth_platform.lib.lake import LakeConfig
from synth_platform.lib.metadata import TableMetadata, derive_metadata
from synth_platform.lib.publish import LAKE_DIR, Release, Staged, publish_group
from synth_platform.lib.report import GateLine, render_report, write_report
from synth_platform.lib.specs import ModelSpec
from synth_platform.lib.split import fingerprint, holdout_mask
from synth_platform.lib.synthesis import fit_synthesizer, to_arrow, write_candidate, write_frame
from synth_platform.lib.tracking import code_version, log_run_artifact, log_training
from synth_platform.lib.warehouse import Warehouse


@dataclass(frozen=True)
class TablePaths:
    """Files of one table in the private zone."""

    root: Path

    train = property(lambda self: self.root / "train.parquet")
    holdout = property(lambda self: self.root / "holdout.parquet")
    metadata = property(lambda self: self.root / "metadata.json")
    model = property(lambda self: self.root / "synthesizer.pkl")
    model_info = property(lambda self: self.root / "synthesizer.json")
    candidate = property(lambda self: self.root / "candidate.parquet")
    candidate_info = property(lambda self: self.root / "candidate.json")
    report = property(lambda self: self.root / "gates" / "report.html")

    def gate(self, kind: str) -> Path:
        return self.root / "gates" / f"{kind}.json"


def paths_for(home: SynthHome, table: str) -> TablePaths:
    return TablePaths(home.table_dir(table))


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)


def _read_json(path: Path, *, table: str, step: str) -> dict[str, Any]:
    if not path.exists():
        raise SourceError(f"table '{table}': {path.name} is missing; materialize {step} first.")
    return json.loads(path.read_text())


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
    tmp.replace(path)


def load_metadata(paths: TablePaths, table: str) -> tuple[TableMetadata, dict]:
    raw = _read_json(paths.metadata, table=table, step=f"{table}_split")
    m = raw["table"]
    meta = TableMetadata(
        table=m["table"],
        primary_key=m["primary_key"],
        numeric=tuple(m["numeric"]),
        datetime=tuple(m["datetime"]),
        categorical=tuple(m["categorical"]),
        pii=dict(m["pii"]),
        columns=tuple(m["columns"]),
        foreign_keys=tuple(m.get("foreign_keys", ())),
    )
    return meta, raw["sdv"]


# --------------------------------------------------------------------------- split


@dataclass(frozen=True)
class SplitResult:
    train_rows: int
    holdout_rows: int
    source_fingerprint: str
    metadata: TableMetadata


@dataclass(frozen=True)
class ParentKey:
    """A foreign key of a table into its parent in the same synthesis group."""

    column: str
    parent: str
    parent_column: str


def split_table(
    *,
    home: SynthHome,
    warehouse: Warehouse,
    model: ModelSpec,
    parents: tuple[ParentKey, ...] = (),
) -> SplitResult:
    """Read the real table from the warehouse, derive its metadata, and write a seeded
    train/holdout split.

    With ``parents`` (the table is a child in a synthesis group; the parents' splits must
    exist), a row follows its parent: it is held out exactly when a parent row it references
    is, so whole families stay on one side and every training key resolves in the parents'
    training rows. Rows without a resolvable parent key are split on their own key.
    """
    real = read_real_table(
        warehouse=warehouse,
        relation=model.relation,
        table=model.name,
        exclude=tuple(model.spec.exclude),
    )
    meta, sdv = derive_metadata(
        data=real, model=model, foreign_keys=tuple(dict.fromkeys(p.column for p in parents))
    )
    held = holdout_mask(
        real, key=meta.primary_key, holdout=model.spec.holdout, seed=model.spec.seed
    )
    if parents:
        own, held = held, np.zeros(len(real), dtype=bool)
        resolved = np.zeros(len(real), dtype=bool)
        for p in parents:
            parent_paths = paths_for(home, p.parent)
            if not (parent_paths.train.exists() and parent_paths.holdout.exists()):
                raise SourceError(
                    f"table '{model.name}': the split of its parent '{p.parent}' is missing; "
                    f"materialize {p.parent}_split first."
                )
            fk = real[p.column]
            parent_train, parent_holdout = (
                pd.read_parquet(path, columns=[p.parent_column])[p.parent_column]
                for path in (parent_paths.train, parent_paths.holdout)
            )
            in_holdout = fk.isin(parent_holdout).to_numpy()
            held |= in_holdout
            resolved |= in_holdout | fk.isin(parent_train).to_numpy()
        held |= ~resolved & own
    train = real.loc[~held].reset_index(drop=True)
    holdout = real.loc[held].reset_index(drop=True)
    if len(train) < 10 or holdout.empty:
        raise SourceError(
            f"table '{model.name}': {len(real)} rows give {len(train)} training and "
            f"{len(holdout)} holdout rows; at least 10 and 1 are needed. Add rows or change "
            "`meta.synthetic.holdout`."
        )
    paths = paths_for(home, model.name)
    _write_parquet(train, paths.train)
    _write_parquet(holdout, paths.holdout)
    fp = fingerprint(real)
    _write_json(paths.metadata, {"table": meta.to_dict(), "sdv": sdv, "source_fingerprint": fp})
    return SplitResult(len(train), len(holdout), fp, meta)


# --------------------------------------------------------------------------- train


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment_id: str
    model_name: str
    model_version: str | None
    fit_seconds: float
    rows: int
    columns: int
    source_fingerprint: str


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("sdv", "pandas", "cloudpickle")]


def train_table(
    *,
    home: SynthHome,
    model: ModelSpec,
    tracking_uri: str,
    run_tags: Mapping[str, str] | None = None,
) -> TrainResult:
    """Fit the synthesizer on the training rows and record the run in MLflow.

    ``run_tags`` are added to the MLflow run (the orchestrator's run id and asset key).
    """
    paths = paths_for(home, model.name)
    meta, sdv = load_metadata(paths, model.name)
    fp = _read_json(paths.metadata, table=model.name, step=f"{model.name}_split")[
        "source_fingerprint"
    ]
    train = pd.read_parquet(paths.train)
    fit = fit_synthesizer(train=train, metadata=meta, sdv_metadata=sdv, spec=model.spec)
    run = log_training(
        tracking_uri=tracking_uri,
        artifact_root=home.mlflow_artifacts,
        table=model.name,
        params={
            "synthesizer": model.spec.synthesizer,
            **{f"param.{k}": v for k, v in model.spec.parameters.items()},
            "seed": model.spec.seed,
            "holdout": model.spec.holdout,
            "primary_key": meta.primary_key,
            "pii_columns": ",".join(sorted(meta.pii)),
        },
        tags={
            "synth_platform.table": model.name,
            "synth_platform.dbt_model": model.unique_id,
            "synth_platform.source_fingerprint": fp,
            "synth_platform.code_version": code_version(),
            **(run_tags or {}),
        },
        metrics={
            "fit_seconds": fit.fit_seconds,
            "train_rows": fit.rows,
            "train_columns": fit.columns,
        },
        synthesizer=fit.synthesizer,
        metadata_json={"table": meta.to_dict(), "sdv": sdv},
        pip_requirements=_pip_requirements(),
    )
    tmp = paths.model.with_suffix(".pkl.tmp")
    with open(tmp, "wb") as fh:
        cloudpickle.dump(fit.synthesizer, fh)
    tmp.replace(paths.model)
    result = TrainResult(
        run_id=run.run_id,
        experiment_id=run.experiment_id,
        model_name=run.model_name,
        model_version=run.model_version,
        fit_seconds=fit.fit_seconds,
        rows=fit.rows,
        columns=fit.columns,
        source_fingerprint=fp,
    )
    _write_json(paths.model_info, asdict(result))
    return result


# --------------------------------------------------------------------------- sample


@dataclass(frozen=True)
class CandidateResult:
    candidate_id: str
    rows: int
    seed: int
    sample_seconds: float
    run_id: str
    path: str


def _pii_context(
    meta: TableMetadata, frames: list[pd.DataFrame]
) -> tuple[dict[str, float], dict[str, frozenset[str]]]:
    real = pd.concat([f[list(meta.pii)] for f in frames], ignore_index=True)
    nulls = {c: float(real[c].isna().mean()) for c in meta.pii}
    forbidden = {c: frozenset(real[c].dropna().astype(str)) for c in meta.pii}
    return nulls, forbidden


def sample_table(
    *,
    home: SynthHome,
    model: ModelSpec,
    synthesizer: Any | None = None,
    frame: pd.DataFrame | None = None,
) -> CandidateResult:
    """Sample the candidate synthetic table (private) from the fitted model, in batches.

    Args:
        synthesizer: Use this fitted synthesizer instead of the saved one (tests plant
            defective synthesizers this way).
        frame: Rows already sampled for this table (by a multi-table synthesizer); they are
            written as the candidate instead of sampling.
    """
    paths = paths_for(home, model.name)
    meta, _ = load_metadata(paths, model.name)
    info = _read_json(paths.model_info, table=model.name, step=f"{model.name}_synthesizer")
    if synthesizer is None and frame is None:
        with open(paths.model, "rb") as fh:
            synthesizer = cloudpickle.load(fh)
    train_rows = pq.read_metadata(paths.train).num_rows
    holdout_rows = pq.read_metadata(paths.holdout).num_rows
    rows = model.spec.sample_rows(train_rows + holdout_rows)
    nulls, forbidden = ({}, {})
    if meta.pii:
        nulls, forbidden = _pii_context(
            meta,
            [pd.read_parquet(p, columns=list(meta.pii)) for p in (paths.train, paths.holdout)],
        )
    start = time.perf_counter()
    schema = pq.read_schema(paths.train).remove_metadata()
    if frame is not None:
        written = write_frame(
            frame=frame, metadata=meta, schema=schema, seed=model.spec.seed,
            path=paths.candidate, null_shares=nulls, forbidden=forbidden,
        )  # fmt: skip
    else:
        written = write_candidate(
            synthesizer=synthesizer, metadata=meta, schema=schema, rows=rows,
            seed=model.spec.seed, batch_size=model.spec.batch_size, path=paths.candidate,
            null_shares=nulls, forbidden=forbidden,
        )  # fmt: skip
    result = CandidateResult(
        candidate_id=uuid.uuid4().hex,
        rows=written,
        seed=model.spec.seed,
        sample_seconds=time.perf_counter() - start,
        run_id=info["run_id"],
        path=str(paths.candidate),
    )
    _write_json(paths.candidate_info, asdict(result))
    _forget_verdicts(paths)
    return result


def _forget_verdicts(paths: TablePaths) -> None:
    """Results of an older candidate no longer apply."""
    for kind in gx_suites.GATE_KINDS:
        paths.gate(kind).unlink(missing_ok=True)
    paths.report.unlink(missing_ok=True)


def replace_candidate(*, home: SynthHome, table: str, frame: pd.DataFrame) -> CandidateResult:
    """Overwrite a table's candidate with ``frame`` (same schema) under a new candidate id.

    The multi-table path uses it after re-keying children to their synthetic parents.
    """
    paths = paths_for(home, table)
    old = _read_json(paths.candidate_info, table=table, step=f"{table}_synthetic")
    schema = pq.read_schema(paths.candidate).remove_metadata()
    tmp = paths.candidate.with_suffix(".parquet.tmp")
    pq.write_table(to_arrow(frame.reset_index(drop=True), schema), tmp)
    tmp.replace(paths.candidate)
    result = CandidateResult(**{**old, "candidate_id": uuid.uuid4().hex, "rows": len(frame)})
    _write_json(paths.candidate_info, asdict(result))
    _forget_verdicts(paths)
    return result


# --------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class GateResult:
    """The verdict of one blocking gate on one candidate."""

    table: str
    kind: str
    candidate_id: str
    passed: bool
    score: float
    threshold: float | None
    metrics: dict[str, Any]
    failures: list[str]
    suite_path: str
    report_uri: str | None
    evaluated_at: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    suite_paths: list[str] = field(default_factory=list)
    run_id: str | None = None  # the MLflow run holding the gate's full result


def _fidelity_metrics(
    *,
    real: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synth: pd.DataFrame,
    meta: TableMetadata,
    model: ModelSpec,
) -> tuple[dict[str, Any], dict[str, Any], FidelityReport]:
    rep = evaluate_fidelity(
        real=real, synthetic=synth, numeric=meta.numeric, datetime=meta.datetime,
        categorical=meta.categorical, seed=model.spec.seed,
    )  # fmt: skip
    worst = float(rep.shapes["score"].min()) if len(rep.shapes) else 1.0
    metrics: dict[str, Any] = {
        "overall": rep.overall,
        "column_shapes": rep.column_shapes,
        "column_pair_trends": rep.column_pair_trends,
        "worst_column_shape": worst,
    }
    details: dict[str, Any] = {
        "binning": "real",
        "shapes": rep.shapes.to_dict(orient="records"),
        "pairs": rep.pairs.to_dict(orient="records"),
    }
    target = model.spec.target
    if target:
        util = evaluate_utility(
            train=train, holdout=holdout, synthetic=synth, target=target,
            numeric=meta.numeric, datetime=meta.datetime, categorical=meta.categorical,
            seed=model.spec.seed,
        )  # fmt: skip
        metrics["utility"] = util.ratio
        metrics["utility_real_score"] = util.real_score
        metrics["utility_synthetic_score"] = util.synthetic_score
        details["utility"] = _plain(util)
    return metrics, details, rep


def _privacy_metrics(
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synth: pd.DataFrame,
    meta: TableMetadata,
    model: ModelSpec,
) -> tuple[dict[str, Any], dict[str, Any], PrivacyReport]:
    cols = list(meta.evaluated)
    seed = model.spec.seed
    rep = evaluate_privacy(
        train=train[cols], holdout=holdout[cols], synthetic=synth[cols], numeric=meta.numeric,
        datetime=meta.datetime, categorical=meta.categorical, seed=seed,
    )  # fmt: skip
    real_pii = set()
    for c in meta.pii:
        for frame in (train, holdout):
            s = frame[c].dropna()
            if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
                real_pii.update(s.astype(str))
    leaks = find_pii_leaks(real_values=real_pii, synthetic=synth) if real_pii else {}
    metrics: dict[str, Any] = {
        "exact_copies_train": rep.exact_copies_train,
        "exact_copies_holdout": rep.exact_copies_holdout,
        "dcr_share": rep.dcr_share,
        "nndr_median": rep.nndr_median,
        "baseline_protection": rep.baseline_protection,
        "pii_leaks": int(sum(leaks.values())),
        "n_synthetic_evaluated": rep.n_synthetic_evaluated,
    }
    details: dict[str, Any] = {"pii_leaks_by_column": leaks}
    if model.spec.attacks:
        attacks = evaluate_attacks(
            train=train[cols], holdout=holdout[cols], synthetic=synth[cols],
            numeric=meta.numeric, datetime=meta.datetime, categorical=meta.categorical,
            seed=seed,
        )  # fmt: skip
        metrics["singling_out_risk"] = attacks.singling_out.risk
        metrics["linkability_risk"] = attacks.linkability.risk
        metrics["inference_risk"] = max((r.risk for r in attacks.inference.values()), default=None)
        details["attacks"] = _plain(attacks)
    return metrics, details, rep


def _validity_metrics(
    *, real: pd.DataFrame, synth: pd.DataFrame, meta: TableMetadata
) -> tuple[dict[str, Any], dict[str, Any]]:
    rep = evaluate_diagnostic(
        real=real, synthetic=synth, numeric=meta.numeric, datetime=meta.datetime,
        categorical=meta.categorical, primary_key=meta.primary_key,
    )  # fmt: skip
    metrics = {
        "boundary_adherence": rep.boundary_adherence,
        "category_adherence": rep.category_adherence,
        "key_uniqueness": rep.key_uniqueness,
        "table_structure": rep.table_structure,
        "diagnostic": rep.overall,
    }
    return metrics, {"diagnostic": rep.details.to_dict(orient="records")}


def _plain(obj: Any) -> Any:
    """A report dataclass as JSON-ready values (arrays and frames summarised)."""
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _plain(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, pd.DataFrame):
        return obj.to_dict(orient="records")
    if isinstance(obj, np.ndarray):
        return None if obj.size > 100 else obj.tolist()
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _check_lines(kind: str, outcomes: list[gx_suites.ExpectationOutcome]) -> list[dict[str, Any]]:
    """Per-metric lines (metric, value, threshold, direction, passed) of metric suites."""
    lines = []
    for o in outcomes:
        if o.type not in (gx_suites.BETWEEN, gx_suites.PRESENT) or not isinstance(
            o.observed, int | float
        ):
            continue
        direction = "max" if "max_value" in o.bound else "min"
        threshold = o.bound.get("max_value", o.bound.get("min_value"))
        lines.append(
            {
                "gate": kind,
                "metric": o.column,
                "value": o.observed,
                "threshold": threshold,
                "direction": direction,
                "passed": o.success,
            }
        )
    return lines


def evaluate_gate(
    *,
    home: SynthHome,
    model: ModelSpec,
    kind: str,
    expectations_dir: Path,
    tracking_uri: str | None,
) -> GateResult:
    """Compute a gate's metrics, validate them with its GE suites, and record the verdict.

    When this is the last of the three gates evaluated on the candidate, also renders the
    HTML evaluation report (private zone, and MLflow when tracking).
    """
    if kind not in gx_suites.GATE_SUITES:
        raise ValueError(f"unknown gate kind {kind!r}")
    paths = paths_for(home, model.name)
    meta, _ = load_metadata(paths, model.name)
    cand = _read_json(paths.candidate_info, table=model.name, step=f"{model.name}_synthetic")
    train = pd.read_parquet(paths.train)
    holdout = pd.read_parquet(paths.holdout)
    synth = pd.read_parquet(paths.candidate)
    real = pd.concat([train, holdout], ignore_index=True)
    suites = gx_suites.ensure_suites(
        directory=expectations_dir,
        table=model.name,
        real=real,
        metadata=meta,
        thresholds=model.spec.thresholds,
        not_null=model.not_null_columns,
    )
    if kind == "fidelity":
        metrics, details, fid = _fidelity_metrics(
            real=real, train=train, holdout=holdout, synth=synth, meta=meta, model=model
        )
        _save_fidelity(paths, fid)
        headline = "overall"
    elif kind == "privacy":
        metrics, details, priv = _privacy_metrics(
            train=train, holdout=holdout, synth=synth, meta=meta, model=model
        )
        _save_privacy(paths, priv)
        headline = "dcr_share"
    else:
        metrics, details = _validity_metrics(real=real, synth=synth, meta=meta)
        headline = "validity"
    computed = {k for k, v in metrics.items() if v is not None}
    not_applicable = {k for k, v in metrics.items() if v is None}
    metric_frame = pd.DataFrame([{k: metrics[k] for k in sorted(computed)}])
    outcomes: list[gx_suites.ExpectationOutcome] = []
    results: dict[str, Any] = {}
    success = True
    for suite_kind in gx_suites.GATE_SUITES[kind]:
        suite = gx_suites.applicable(
            gx_suites.load_suite(suites[suite_kind], thresholds=model.spec.thresholds),
            available=computed,
            not_applicable=not_applicable,
        )
        data = synth if suite_kind == "validity" else metric_frame
        outcome = gx_suites.validate(suite=suite, data=data)
        success = success and outcome.success
        outcomes.extend(outcome.outcomes)
        results[suite_kind] = outcome.result_json
        if suite_kind == "validity":
            n = len(outcome.outcomes)
            metrics["row_expectations_met"] = (n - len(outcome.failures)) / n if n else 1.0
    if kind == "validity":
        parts = [metrics["row_expectations_met"], metrics["diagnostic"]]
        metrics["validity"] = min(p for p in parts if p is not None)
    checks = _check_lines(kind, [o for o in outcomes if o.column in metrics])
    threshold = (
        1.0
        if kind == "validity"
        else next((c["threshold"] for c in checks if c["metric"] == headline), None)
    )
    failures = [
        f"{o.type}({o.column}): observed {o.observed!r}, bound {o.bound}"
        + (f", {o.unexpected_count} unexpected" if o.unexpected_count else "")
        for o in outcomes
        if not o.success
    ]
    report_uri = None
    if tracking_uri:
        report_uri = log_run_artifact(
            tracking_uri=tracking_uri,
            run_id=cand["run_id"],
            name=f"{kind}.json",
            payload={
                "candidate_id": cand["candidate_id"],
                "metrics": metrics,
                "details": details,
                "validation_results": results,
            },
            metrics={f"gate.{kind}.{k}": v for k, v in metrics.items() if _is_number(v)},
        )
    result = GateResult(
        table=model.name,
        kind=kind,
        candidate_id=cand["candidate_id"],
        passed=success,
        score=float(metrics[headline]),
        threshold=None if threshold is None else float(threshold),
        metrics=metrics,
        failures=failures,
        suite_path=str(suites[gx_suites.GATE_SUITES[kind][0]]),
        report_uri=report_uri,
        evaluated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        checks=checks,
        suite_paths=[str(suites[k]) for k in gx_suites.GATE_SUITES[kind]],
        run_id=cand.get("run_id"),
    )
    _write_json(paths.gate(kind), asdict(result))
    return result


# ------------------------------------------------------------------- evaluation report


def _save_fidelity(paths: TablePaths, rep: FidelityReport) -> None:
    root = paths.gate("fidelity").parent
    root.mkdir(parents=True, exist_ok=True)
    rep.shapes.to_parquet(root / "fidelity_shapes.parquet")
    rep.pairs.to_parquet(root / "fidelity_pairs.parquet")


def _save_privacy(paths: TablePaths, rep: PrivacyReport) -> None:
    root = paths.gate("privacy").parent
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / "privacy_dcr.npz", dcr_train=rep.dcr_train, dcr_holdout=rep.dcr_holdout)


def _load_reports(
    paths: TablePaths, gates: dict[str, dict[str, Any]]
) -> tuple[FidelityReport, PrivacyReport]:
    root = paths.gate("fidelity").parent
    f, p = gates["fidelity"]["metrics"], gates["privacy"]["metrics"]
    fid = FidelityReport(
        column_shapes=f["column_shapes"],
        column_pair_trends=f["column_pair_trends"],
        overall=f["overall"],
        shapes=pd.read_parquet(root / "fidelity_shapes.parquet"),
        pairs=pd.read_parquet(root / "fidelity_pairs.parquet"),
    )
    with np.load(root / "privacy_dcr.npz") as dcr:
        dcr_train, dcr_holdout = dcr["dcr_train"], dcr["dcr_holdout"]
    priv = PrivacyReport(
        exact_copies_train=p["exact_copies_train"],
        exact_copies_holdout=p["exact_copies_holdout"],
        dcr_share=p["dcr_share"],
        dcr_train=dcr_train,
        dcr_holdout=dcr_holdout,
        nndr_median=p["nndr_median"],
        baseline_protection=p.get("baseline_protection"),
        n_synthetic_evaluated=p["n_synthetic_evaluated"],
        n_reference=len(dcr_train),
    )
    return fid, priv


def current_gates(*, home: SynthHome, table: str) -> dict[str, dict[str, Any]]:
    """The gate verdicts recorded for the current candidate (any outcome), by kind."""
    paths = paths_for(home, table)
    cand = _read_json(paths.candidate_info, table=table, step=f"{table}_synthetic")
    found = {}
    for kind in gx_suites.GATE_KINDS:
        p = paths.gate(kind)
        if p.exists():
            v = json.loads(p.read_text())
            if v["candidate_id"] == cand["candidate_id"]:
                found[kind] = v
    return found


def render_evaluation_report(
    *, home: SynthHome, model: ModelSpec, tracking_uri: str | None
) -> tuple[Path, str | None] | None:
    """Render the candidate's HTML report once every gate has a verdict; `None` before that.

    The report shows real distributions next to synthetic ones, so it stays in the private
    zone (and the MLflow run); returns its path and MLflow artifact URI.
    """
    gates = current_gates(home=home, table=model.name)
    if set(gates) != set(gx_suites.GATE_KINDS):
        return None
    paths = paths_for(home, model.name)
    meta, _ = load_metadata(paths, model.name)
    cand = _read_json(paths.candidate_info, table=model.name, step=f"{model.name}_synthetic")
    info = _read_json(paths.model_info, table=model.name, step=f"{model.name}_synthesizer")
    fid, priv = _load_reports(paths, gates)
    cols = list(meta.evaluated)
    real = pd.concat(
        [pd.read_parquet(paths.train, columns=cols), pd.read_parquet(paths.holdout, columns=cols)],
        ignore_index=True,
    )
    lines = [GateLine(**c) for kind in gx_suites.GATE_KINDS for c in gates[kind]["checks"]]
    html = render_report(
        table=model.name, real=real, synthetic=pd.read_parquet(paths.candidate, columns=cols),
        numeric=meta.numeric, datetime=meta.datetime, categorical=meta.categorical,
        fidelity=fid, privacy=priv, gates=lines, seed=model.spec.seed,
        context={
            "candidate": cand["candidate_id"],
            "rows": str(cand["rows"]),
            "seed": str(cand["seed"]),
            "synthesizer": model.spec.synthesizer,
            "mlflow run": info["run_id"],
            "source fingerprint": info["source_fingerprint"],
            "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )  # fmt: skip
    path = write_report(paths.report, html)
    uri = None
    if tracking_uri:
        uri = log_run_artifact(
            tracking_uri=tracking_uri, run_id=info["run_id"], name="report.html", payload=html
        )
    return path, uri


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# --------------------------------------------------------------------------- publish


def approved_gates(*, home: SynthHome, table: str) -> dict[str, dict[str, Any]]:
    """The gate verdicts of the current candidate; raises unless all three passed.

    Publication re-checks this itself, so a candidate is never published because a run
    skipped its checks (e.g. materializing `<table>_published` alone).
    """
    recorded = current_gates(home=home, table=table)
    verdicts, failures = {}, []
    for kind in gx_suites.GATE_KINDS:
        v = recorded.get(kind)
        if v is None:
            failures.append(f"{kind} (not evaluated for the current candidate)")
        elif not v["passed"]:
            failures.append(f"{kind} (score {v['score']:.4g}, threshold {v['threshold']})")
        else:
            verdicts[kind] = v
    if failures:
        raise GateFailedError(table=table, failures=failures)
    return verdicts


def release_manifest(
    *, home: SynthHome, model: ModelSpec, verdicts: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The manifest of the table's current candidate: lineage, model and every gate score."""
    paths = paths_for(home, model.name)
    cand = _read_json(paths.candidate_info, table=model.name, step=f"{model.name}_synthetic")
    info = _read_json(paths.model_info, table=model.name, step=f"{model.name}_synthesizer")
    return {
        "dbt_model": model.unique_id,
        "rows": cand["rows"],
        "seed": cand["seed"],
        "synthesizer": info.get("synthesizer", model.spec.synthesizer),
        "synthesizer_parameters": model.spec.parameters,
        "source_fingerprint": info["source_fingerprint"],
        "mlflow_run_id": info["run_id"],
        "model_name": info["model_name"],
        "model_version": info["model_version"],
        "candidate_id": cand["candidate_id"],
        "code_version": code_version(),
        "scores": {
            kind: {
                "score": v["score"],
                "threshold": v["threshold"],
                "passed": v["passed"],
                "metrics": {
                    c["metric"]: {
                        "value": c["value"],
                        "threshold": c["threshold"],
                        "direction": c["direction"],
                    }  # fmt: skip
                    for c in v.get("checks", [])
                },
            }
            for kind, v in verdicts.items()
        },
    }


def publish_tables(
    *,
    home: SynthHome,
    models: list[ModelSpec],
    keep: int | None = None,
    extra: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Release]:
    """Publish the current candidates of ``models`` as one release set (one atomic commit),
    if and only if every gate of every table passed; ``extra`` adds manifest entries."""
    verdicts = {m.name: approved_gates(home=home, table=m.name) for m in models}
    releases = {}
    for m in models:
        manifest = release_manifest(home=home, model=m, verdicts=verdicts[m.name])
        manifest.update((extra or {}).get(m.name, {}))
        releases[m.name] = Staged(paths_for(home, m.name).candidate, manifest)
    return publish_group(
        store=home.public_dir,
        releases=releases,
        keep=keep,
        lake=LakeConfig.from_env(home.public_dir / LAKE_DIR),
    )


def publish_table(*, home: SynthHome, model: ModelSpec, keep: int | None = None) -> Release:
    """Publish the current candidate as a new release, if and only if every gate passed."""
    return publish_tables(home=home, models=[model], keep=keep)[model.name]
