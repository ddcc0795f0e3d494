"""The multi-table lifecycle: a group of related tables trained, sampled, gated and published
together (the orchestration of :mod:`synth_platform.lib.multitable`'s pure functions).

Per group (``customers -> accounts -> transactions`` in the demo):

1. every table is split by :func:`lifecycle.split_table` with its parents, so held-out families
   stay together and training keys resolve;
2. :func:`train_group` picks the strategy (:func:`multitable.choose_strategy`), derives the SDV
   multi-table metadata, and fits either one ``HMASynthesizer`` (one MLflow run for the group)
   or one single-table synthesizer per table (one run each);
3. :func:`sample_group` writes every table's candidate: HMA samples the group at once;
   ``independent`` samples each table and re-keys every child to the synthetic parents;
4. the per-table gates run unchanged on each candidate, and :func:`evaluate_group_gate` adds,
   per child table, referential integrity, cardinality and cross-table trends, each validated
   by a Great Expectations suite (``expectations/<child>.<kind>.json``);
5. :func:`publish_group_tables` publishes every table of the group in one release set (one
   atomic commit of the store), only when every gate of every table passed.

Files live in ``SYNTH_HOME/private/_groups/<group>/``; tables keep their own directories.

A group's sampling and publishing hold the group's refresh lock and then those of its tables, in
name order, exclusively; its gates hold them shared (:mod:`synth_platform.lib.locks`). The group's
`candidate.json` records the candidate id (content hash) of every table it sampled; group-gate
verdicts record the ids they judged, and the publisher refuses a table whose candidate is not the
one the group sampled and every gate approved.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cloudpickle
import pandas as pd
import pyarrow.parquet as pq

from synth_platform.lib import expectations as gx_suites
from synth_platform.lib import lifecycle, locks
from synth_platform.lib.errors import GateFailedError, ProjectError, SourceError, SpecError
from synth_platform.lib.home import SynthHome
from synth_platform.lib.multitable import (
    IntegrityResult,
    Relationship,
    Strategy,
    TableGroup,
    choose_strategy,
    evaluate_cardinality,
    evaluate_cross_table_trends,
    evaluate_integrity,
    fit_hma,
    rekey_children,
    sample_hma,
    sdv_multi_metadata,
)

# The group's structure lives in `plan` (import-light, for the definitions); callers of this
# module keep using `G.GROUP_GATE_KINDS`, `G.parent_keys` and the rest.
from synth_platform.lib.plan import GROUP_GATE_DESCRIPTIONS as GROUP_GATE_DESCRIPTIONS
from synth_platform.lib.plan import GROUP_GATE_KINDS, children, group_slug
from synth_platform.lib.plan import parent_keys as parent_keys
from synth_platform.lib.progress import Meter, Progress, report
from synth_platform.lib.publish import Release
from synth_platform.lib.refresh import code_version, refresh_key
from synth_platform.lib.specs import ModelSpec, Thresholds
from synth_platform.lib.tracking import (
    check_tracking_server,
    log_run_artifact,
    log_training,
)
from synth_platform.lib.verdict import NotApplicable, NotApplicableReason, bounds_from_suite, decide

NA = NotApplicableReason

#: Metric name prefix -> (threshold field or None for a fixed bound, bound, fixed value).
_GROUP_METRICS: dict[str, dict[str, tuple[str | None, str, float | None]]] = {
    "integrity": {
        "integrity": (None, "min", 1.0),
        "orphans": (None, "max", 0.0),
        "duplicate_parent_keys": (None, "max", 0.0),
    },
    "cardinality": {"cardinality": ("cardinality", "min", None)},
    "cross_table": {"cross_table_trends": ("cross_table_trends", "min", None)},
}

ORPHAN_TOLERANCE = 0.01
"""Where real keys may point at no parent (dbt's `relationships` test at `severity: warn`),
the integrity gate bounds the gap between the synthetic and the real share of such orphan
keys (absolute) instead of demanding that every key resolve."""

#: The integrity metrics of a foreign key with real orphans (see :data:`ORPHAN_TOLERANCE`).
_ORPHAN_METRICS: dict[str, tuple[str | None, str, float | None]] = {
    "orphan_share_gap": (None, "max", ORPHAN_TOLERANCE),
    "duplicate_parent_keys": (None, "max", 0.0),
}


def _metrics_of(kind: str, fk: str, orphan_fks: Collection[str]) -> dict:
    """Metric prefix -> (threshold field, bound, fixed value) of one foreign key's gate."""
    return _ORPHAN_METRICS if kind == "integrity" and fk in orphan_fks else _GROUP_METRICS[kind]


# --------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class GroupPaths:
    """Files of one group in the private zone."""

    root: Path

    strategy = property(lambda self: self.root / "strategy.json")
    sdv_metadata = property(lambda self: self.root / "sdv_metadata.json")
    model = property(lambda self: self.root / "hma.pkl")
    candidate = property(lambda self: self.root / "candidate.json")

    def gate(self, table: str, kind: str) -> Path:
        return self.root / "gates" / f"{table}.{kind}.json"


def group_paths(home: SynthHome, group: TableGroup) -> GroupPaths:
    return GroupPaths(home.private_dir / "_groups" / group_slug(group))


def requested_strategy(group: TableGroup, models: Mapping[str, ModelSpec]) -> str:
    """The group's ``multi_table`` setting: ``auto`` unless a table sets it; tables of one
    group must agree (the error names both)."""
    chosen = {t: models[t].spec.multi_table for t in group.tables}
    explicit = {t: v for t, v in chosen.items() if v != "auto"}
    if len(set(explicit.values())) > 1:
        (a, va), (b, vb) = sorted(explicit.items())[:2]
        raise SpecError(
            model=a,
            field="multi_table",
            problem=(
                f"'{a}' asks for '{va}' but '{b}' asks for '{vb}', and both belong to group "
                f"'{group.name}', which is synthesized with one strategy; set the same value "
                "on both (or on one only)"
            ),
        )
    return next(iter(explicit.values()), "auto")


@contextmanager
def group_lock(
    home: SynthHome, group: TableGroup, *, step: str, shared: bool = False
) -> Iterator[None]:
    """The refresh lock of the group's folder, then those of its tables (in name order)."""
    root = group_paths(home, group).root
    with ExitStack() as stack:
        stack.enter_context(
            locks.refresh_lock(root, what="group", name=group.name, step=step, shared=shared)
        )
        for t in sorted(group.tables):
            stack.enter_context(lifecycle.table_lock(home, t, step=step, shared=shared))
        yield


def _holding_group_lock(
    step: str, *, shared: bool = False, verify_candidates: bool = False
) -> Callable[[Callable], Callable]:
    """Run a keyword-only group step (``home=``, ``group=``) under :func:`group_lock`; with
    ``verify_candidates`` (a group gate: ``table=``), first check that the candidate files of
    the table and its parents hash to their ids."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def locked(*args: Any, **kwargs: Any) -> Any:
            label = f"{step} {kwargs['table']}.{kwargs['kind']}" if "kind" in kwargs else step
            home, group = kwargs["home"], kwargs["group"]
            with group_lock(home, group, step=label, shared=shared):
                if verify_candidates:  # the gated table and its parents
                    table = kwargs["table"]
                    parents = {r.parent for r in group.relationships if r.child == table}
                    for t in sorted({table} | parents):
                        lifecycle.verify_candidate_file(home=home, table=t)
                return fn(*args, **kwargs)

        return locked

    return wrap


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = locks.temp_path(path)  # unique: concurrent writers never share a temp file
    with locks.removed_on_error(tmp):
        tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        tmp.replace(path)


def _read_json(path: Path, *, group: TableGroup, step: str) -> dict[str, Any]:
    if not path.exists():
        raise SourceError(
            f"group '{group.name}': {path.name} is missing; materialize {step} first."
        )
    return json.loads(path.read_text())


def _frames(home: SynthHome, tables: Sequence[str], *, real: bool) -> dict[str, pd.DataFrame]:
    """Real rows (train + holdout) or the current candidates, per table."""
    out = {}
    for t in tables:
        p = lifecycle.paths_for(home, t)
        if real:
            out[t] = pd.concat(
                [pd.read_parquet(p.train), pd.read_parquet(p.holdout)], ignore_index=True
            )
        else:
            out[t] = pd.read_parquet(p.candidate)
    return out


# ---------------------------------------------------------------------------------- train


@dataclass(frozen=True)
class GroupTrainResult:
    strategy: Strategy
    reason: str
    rows: dict[str, int]
    fit_seconds: float
    runs: dict[str, str]  # table -> MLflow run id
    sdv_metadata: dict[str, Any] = field(repr=False)


def hma_unsupported(models: Mapping[str, ModelSpec], tables: Sequence[str]) -> dict[str, str]:
    """Tables whose synthesizer settings HMA (Gaussian copulas without KDE) would drop."""
    out = {}
    for t in tables:
        spec = models[t].spec
        dists = [spec.parameters.get("default_distribution")]
        dists += list((spec.parameters.get("numerical_distributions") or {}).values())
        if spec.synthesizer != "gaussian_copula":
            out[t] = f"uses {spec.synthesizer}"
        elif "gaussian_kde" in dists:
            out[t] = "uses gaussian_kde"
    return out


def group_strategy(
    group: TableGroup, models: Mapping[str, ModelSpec], rows: Mapping[str, int]
) -> tuple[Strategy, str]:
    """The strategy of the group and why: the tables' `multi_table` setting, SDV's limits,
    the row budget, and whether HMA could honour every table's synthesizer settings."""
    return choose_strategy(
        group,
        rows,
        requested=requested_strategy(group, models),  # type: ignore[arg-type]
        unsupported=hma_unsupported(models, group.tables),
    )


def _table_parameters(models: Mapping[str, ModelSpec], tables: Sequence[str]) -> dict[str, dict]:
    """Per-table GaussianCopula parameters HMA accepts (it refuses ``gaussian_kde``)."""
    out = {}
    for t in tables:
        spec = models[t].spec
        if spec.synthesizer != "gaussian_copula":
            continue
        params = {
            k: v
            for k, v in spec.parameters.items()
            if k
            in {
                "default_distribution",
                "numerical_distributions",
                "enforce_min_max_values",
                "enforce_rounding",
            }  # fmt: skip
        }
        if params.get("default_distribution") == "gaussian_kde":
            params.pop("default_distribution")
        dists = params.get("numerical_distributions") or {}
        if any(v == "gaussian_kde" for v in dists.values()):
            params["numerical_distributions"] = {
                k: v for k, v in dists.items() if v != "gaussian_kde"
            }
        if params:
            out[t] = params
    return out


def train_group(
    *,
    home: SynthHome,
    group: TableGroup,
    models: Mapping[str, ModelSpec],
    tracking_uri: str,
    run_tags: Mapping[str, str] | None = None,
    refresh_inputs: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
) -> GroupTrainResult:
    """Choose the strategy, derive the SDV multi-table metadata, fit and record the group.

    ``run_tags`` are added to every MLflow run (the orchestrator's run id and asset key);
    ``refresh_inputs`` (per table, :func:`refresh.refresh_inputs`) are recorded with each
    table's model for skip-unchanged; ``progress`` receives fitting progress lines."""
    inputs = refresh_inputs or {}
    check_tracking_server(tracking_uri)  # fail in seconds, before any fit
    paths = group_paths(home, group)
    metas = {t: lifecycle.load_metadata(lifecycle.paths_for(home, t), t) for t in group.tables}
    train = {t: pd.read_parquet(lifecycle.paths_for(home, t).train) for t in group.tables}
    rows = {
        t: len(train[t]) + pq.read_metadata(lifecycle.paths_for(home, t).holdout).num_rows
        for t in group.tables
    }
    strategy, reason = group_strategy(group, models, rows)
    multi = sdv_multi_metadata(group, train, {t: metas[t][1] for t in group.tables})
    _write_json(paths.sdv_metadata, multi)
    runs: dict[str, str] = {}
    start = time.perf_counter()
    if strategy == "independent":

        def record(t: str, fit: lifecycle.FitResult | None) -> None:
            r = lifecycle.train_table(
                home=home, model=models[t], tracking_uri=tracking_uri, run_tags=run_tags,
                refresh_inputs=inputs.get(t), progress=progress, fitted=fit,
            )  # fmt: skip
            runs[t] = r.run_id
            log_run_artifact(
                tracking_uri=tracking_uri, run_id=r.run_id, name="sdv_multi_table_metadata.json",
                payload={"group": group.name, "strategy": strategy, "reason": reason, **multi},
                artifact_path="group",
            )  # fmt: skip

        # The fits are pure and CPU-bound: they run at once (threads, or processes for SDV's
        # synthesizers in big groups). Tracking and model files stay in this thread, table by
        # table, each as soon as its fit is done, while the bigger tables still fit.
        fitted = [t for t in group.tables if not models[t].is_reference]
        fits = _in_parallel(
            lifecycle.fit_table, {t: {"home": home, "model": models[t]} for t in fitted},
            rows={t: len(train[t]) for t in fitted}, what=f"fit group {group.name}",
            progress=progress,
            threads=_thread_safe(models, fitted), then=record,
        )  # fmt: skip
        for t in group.tables:
            if t not in fits:
                record(t, None)
    else:
        root = models[group.tables[0]]
        report(progress, f"fit group {group.name}: SDV HMA on {sum(rows.values()):,} rows")
        fit = fit_hma(
            group=group,
            frames=train,
            metadata=multi,
            seed=root.spec.seed,
            table_parameters=_table_parameters(models, group.tables),
        )
        slug = group_slug(group)
        fingerprints = {
            t: json.loads(lifecycle.paths_for(home, t).metadata.read_text())["source_fingerprint"]
            for t in group.tables
        }
        run = log_training(
            tracking_uri=tracking_uri,
            artifact_root=home.mlflow_artifacts,
            table=f"group.{slug}",
            params={
                "synthesizer": "hma",
                "strategy_reason": reason,
                "tables": ",".join(group.tables),
                "relationships": ";".join(r.key for r in group.relationships),
                "seed": root.spec.seed,
            },
            tags={
                "synth_platform.group": group.name,
                "synth_platform.tables": ",".join(group.tables),
                "synth_platform.code_version": code_version(),
                **{f"synth_platform.source_fingerprint.{t}": fp for t, fp in fingerprints.items()},
                **(run_tags or {}),
            },
            metrics={"fit_seconds": fit.fit_seconds, **{f"train_rows.{t}": n for t, n in fit.rows.items()}},
            synthesizer=fit.synthesizer,
            metadata_json=multi,
            pip_requirements=lifecycle._pip_requirements(),
        )  # fmt: skip
        tmp = locks.temp_path(paths.model)  # unique: concurrent fits never share a temp file
        with locks.removed_on_error(tmp):
            with open(tmp, "wb") as fh:
                cloudpickle.dump(fit.synthesizer, fh)
            tmp.replace(paths.model)
        for t in group.tables:
            runs[t] = run.run_id
            info = lifecycle.TrainResult(
                run_id=run.run_id,
                experiment_id=run.experiment_id,
                model_name=run.model_name,
                model_version=run.model_version,
                fit_seconds=fit.fit_seconds,
                rows=fit.rows[t],
                columns=len(multi["tables"][t]["columns"]),
                source_fingerprint=fingerprints[t],
                refresh_key=refresh_key(inputs[t]) if t in inputs else None,
                refresh_inputs=dict(inputs[t]) if t in inputs else None,
            )
            p = lifecycle.paths_for(home, t)
            _write_json(p.model_info, {**asdict(info), "synthesizer": "hma"})
            p.model.unlink(missing_ok=True)  # a stale single-table model must not be sampled
    result = GroupTrainResult(
        strategy=strategy,
        reason=reason,
        rows=rows,
        fit_seconds=time.perf_counter() - start,
        runs=runs,
        sdv_metadata=multi,
    )
    _write_json(paths.strategy, asdict(result))
    return result


#: Synthesizers whose fit and sampling touch no process-wide state (each table has its own
#: seeded generators; no global NumPy or torch random state, no torch): a group fits and samples
#: such tables in threads of its step. SDV's synthesizers seed and draw from the global states.
THREAD_SAFE_SYNTHESIZERS = frozenset({"cart"})

#: A group of other synthesizers fits and samples its tables in parallel processes from this
#: many training rows in all. A spawned worker imports the libraries again and the fitted model
#: travels back by pickle: on the 1M-transaction example (bench/scale.py, 2 cores) the parallel
#: fit took 27.6 s and the parallel sample 52 s, where a bare script fitted and sampled all
#: three tables one after another in 11.6 s. So it is off by default; set
#: SYNTH_PARALLEL_MIN_ROWS to try it.
PARALLEL_MIN_ROWS = int(os.environ.get("SYNTH_PARALLEL_MIN_ROWS", 10**12))


def _thread_safe(models: Mapping[str, ModelSpec], tables: Sequence[str]) -> bool:
    return all(models[t].spec.synthesizer in THREAD_SAFE_SYNTHESIZERS for t in tables)


def _serialized(progress: Progress | None) -> Progress | None:
    """``progress`` for several threads: one line at a time."""
    if progress is None:
        return None
    lock = threading.Lock()

    def send(line: str) -> None:
        with lock:
            progress(line)

    return send


def _in_parallel(
    fn: Callable[..., Any],
    calls: Mapping[str, Mapping[str, Any]],
    *,
    rows: Mapping[str, int],
    what: str,
    progress: Progress | None,
    threads: bool,
    then: Callable[[str, Any], None] | None = None,
) -> dict[str, Any]:
    """``fn(**kwargs)`` per table at once, the biggest tables (``rows``) first, at most one per
    core: in threads when ``threads`` (each call gets ``progress=``, serialized), else in a
    pool of spawned processes when the tables have :data:`PARALLEL_MIN_ROWS` rows in all; or
    ``{}`` (one table, one core, or a small group of other synthesizers: the caller runs them
    one after another, with progress lines). ``then(table, result)`` runs here (in the calling
    thread), in the callers' order, as soon as that table's result is in, while the others
    still run."""
    workers = min(len(calls), _cores())
    total = sum(rows.get(t, 0) for t in calls)
    if workers < 2 or (not threads and total < PARALLEL_MIN_ROWS):
        return {}
    kind = "threads" if threads else "processes"
    report(progress, f"{what}: {len(calls)} tables in {workers} {kind} ({total:,} rows)")
    start = time.perf_counter()
    if threads:
        progress = _serialized(progress)  # the tables' lines and this thread's, one at a time
        calls = {t: {**kwargs, "progress": progress} for t, kwargs in calls.items()}
        pool: Executor = ThreadPoolExecutor(workers, thread_name_prefix="group")
    else:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    with pool:
        biggest_first = sorted(calls, key=lambda t: -rows.get(t, 0))
        futures = {t: pool.submit(fn, **calls[t]) for t in biggest_first}
        out = {}
        try:
            for t in calls:
                out[t] = futures[t].result()
                report(progress, f"{what}: {t} done, {time.perf_counter() - start:.1f} s")
                if then is not None:
                    then(t, out[t])
        except BaseException:  # an error or an interrupt: start no further table
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return out


def _cores() -> int:
    """The cores this process may use (affinity and a container's CPU limit: joblib's count)."""
    from joblib import cpu_count

    return max(1, int(cpu_count()))


def _sample_unlocked(**kwargs: Any) -> lifecycle.CandidateResult:
    """:func:`lifecycle.sample_table` without taking the table's lock, for a worker thread or
    process of :func:`sample_group`, whose process holds the group's locks (its tables'
    included) for it."""
    return lifecycle.sample_table.__wrapped__(**kwargs)


# --------------------------------------------------------------------------------- sample

Tamper = Callable[[dict[str, pd.DataFrame]], dict[str, pd.DataFrame]]


@_holding_group_lock("group sample")
def sample_group(
    *,
    home: SynthHome,
    group: TableGroup,
    models: Mapping[str, ModelSpec],
    tamper: Tamper | None = None,
    progress: Progress | None = None,
) -> dict[str, lifecycle.CandidateResult]:
    """Write the candidate of every table of the group, with keys that resolve.

    Args:
        tamper: Applied to the sampled frames before they are written (tests plant defects,
            such as children re-keyed to ids that do not exist, this way).
    """
    paths = group_paths(home, group)
    trained = _read_json(paths.strategy, group=group, step=f"{group_slug(group)}_group_synthesizer")
    # The group's verdicts and candidate ids go first: a sampler killed halfway leaves tables
    # whose candidates no group record vouches for, so nothing of the group can be published.
    locks.sweep_stale_temps(paths.root)
    paths.candidate.unlink(missing_ok=True)
    for t in children(group):
        for kind in GROUP_GATE_KINDS:
            paths.gate(t, kind).unlink(missing_ok=True)
    root = models[group.tables[0]]
    out: dict[str, lifecycle.CandidateResult] = {}
    rekey_seconds = 0.0
    if trained["strategy"] == "hma":
        with open(paths.model, "rb") as fh:
            synthesizer = cloudpickle.load(fh)
        scale = root.spec.scale if root.spec.scale is not None else 1.0
        frames = sample_hma(synthesizer=synthesizer, scale=scale, seed=root.spec.seed)
        frames = natural_keys(home=home, group=group, frames=frames, seed=root.spec.seed)
        if tamper is not None:
            frames = tamper(frames)
        for t in group.tables:
            out[t] = lifecycle.sample_table(home=home, model=models[t], frame=frames[t])
    else:
        rows = {  # the rows each table samples, as sample_table counts them
            t: models[t].spec.sample_rows(lifecycle.real_rows(lifecycle.paths_for(home, t)))
            for t in group.tables
        }
        sampled = [t for t in group.tables if not models[t].is_reference]
        out = _in_parallel(
            _sample_unlocked, {t: {"home": home, "model": models[t]} for t in group.tables},
            rows=rows, what=f"sample group {group.name}", progress=progress,
            threads=_thread_safe(models, sampled),
        )  # fmt: skip
        for t in group.tables:
            if t not in out:
                out[t] = lifecycle.sample_table(home=home, model=models[t], progress=progress)
        meter = Meter(progress, stage=f"re-key group {group.name}", total=0)
        rekey_start = time.perf_counter()
        real = _frames(home, group.tables, real=True)
        profiles = {
            t: lifecycle.load_metadata(lifecycle.paths_for(home, t), t)[0] for t in group.tables
        }
        frames = rekey_children(
            group=group,
            real=real,
            synthetic=_frames(home, group.tables, real=False),
            seed=root.spec.seed,
            profiles=profiles,
            progress=meter.set,
        )
        rekey_seconds = time.perf_counter() - rekey_start
        if tamper is not None:  # anything may have changed
            frames = tamper(frames)
            for t in group.tables:
                out[t] = lifecycle.replace_candidate(home=home, table=t, frame=frames[t])
        else:  # only the children's foreign keys did
            for t in children(group):
                keys = [r.child_column for r in group.relationships if r.child == t]
                out[t] = lifecycle.replace_candidate(
                    home=home, table=t, frame=frames[t], columns=keys
                )
    _write_json(
        paths.candidate,
        {
            "strategy": trained["strategy"],
            "candidates": {t: r.candidate_id for t, r in out.items()},
            "rekey_seconds": round(rekey_seconds, 3),
            "sampled_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    return out


def natural_keys(
    *, home: SynthHome, group: TableGroup, frames: Mapping[str, pd.DataFrame], seed: int
) -> dict[str, pd.DataFrame]:
    """Replace the keys a multi-table synthesizer made up (SDV's ``sdv-id-...``) by keys in
    the real keys' format, none of them real (:mod:`~synth_platform.lib.keys`), mapping every
    child's foreign key to its parent's new key so that the links are unchanged."""
    out = {t: f.copy() for t, f in frames.items()}
    for t in group.tables:
        meta, _ = lifecycle.load_metadata(lifecycle.paths_for(home, t), t)
        pk = meta.primary_key
        if not pk or pk not in out[t].columns:
            continue
        if any(r.child == t and r.child_column == pk for r in group.relationships):
            continue  # a 1:1 table: its key is its parent's, already mapped
        old = out[t][pk]
        fresh = lifecycle.synthetic_keys(
            lifecycle.paths_for(home, t), pk, len(old), seed=seed + group.tables.index(t)
        )
        mapping = pd.Series(fresh, index=pd.Index(old.astype(object)))
        mapping = mapping[~mapping.index.duplicated()]
        out[t][pk] = fresh
        for r in group.relationships:
            if r.parent == t and r.parent_column == pk and r.child_column in out[r.child]:
                fk = out[r.child][r.child_column]
                out[r.child][r.child_column] = fk.astype(object).map(mapping).where(fk.notna())
    return out


# ---------------------------------------------------------------------------------- gates


def _metric_suite(
    table: str,
    kind: str,
    fks: Sequence[str],
    thresholds: Thresholds,
    orphan_fks: Collection[str] = (),
) -> dict:
    exps = []
    for fk in fks:
        for prefix, (threshold, bound, fixed) in _metrics_of(kind, fk, orphan_fks).items():
            value = fixed if threshold is None else getattr(thresholds, threshold)
            kwargs: dict[str, Any] = {"column": f"{prefix}__{fk}"}
            kwargs["min_value" if bound == "min" else "max_value"] = value
            exps.append(
                {"type": gx_suites.BETWEEN, "kwargs": kwargs, "meta": {"threshold": threshold, "bound": bound}}
            )  # fmt: skip
    return {
        "name": f"{table}.{kind}",
        "expectations": exps,
        "meta": {
            "table": table,
            "kind": kind,
            "foreign_keys": list(fks),
            "generated_by": "synth_platform",
        },
    }


def ensure_group_suite(
    *,
    directory: Path | None,
    generated: Path,
    table: str,
    kind: str,
    foreign_keys: Sequence[str],
    thresholds: Thresholds,
    orphan_fks: Collection[str] = (),
) -> Path:
    """The child's suite for a group gate: the hand-written one in ``directory``, else one
    generated into ``generated`` for the table's current foreign keys.

    Raises:
        ProjectError: The hand-written suite does not cover exactly the current foreign keys
            (a suite that skipped one would let it pass unchecked).
    """
    wanted = {f"{p}__{fk}" for fk in foreign_keys for p in _metrics_of(kind, fk, orphan_fks)}
    own = Path(directory) / f"{table}.{kind}.json" if directory is not None else None
    if own is not None and own.exists():
        current = json.loads(own.read_text())
        columns = {e["kwargs"].get("column") for e in current.get("expectations", [])}
        if columns != wanted:
            raise ProjectError(
                f"suite {own}: table '{table}' has foreign keys {sorted(foreign_keys)}, but the "
                f"suite expects metrics {sorted(c for c in columns if c)} instead of "
                f"{sorted(wanted)}; add the missing ones (or delete the file to use the "
                "generated suite)."
            )
        return own
    suite = _metric_suite(table, kind, foreign_keys, thresholds, orphan_fks)
    return gx_suites.write_generated(
        Path(generated) / f"{table}.{kind}.json", json.dumps(suite, indent=2) + "\n"
    )


@dataclass(frozen=True)
class GroupGateResult:
    """The verdict of one group gate on one child table's candidate."""

    group: str
    table: str
    kind: str
    candidates: dict[str, str]
    passed: bool
    score: float
    threshold: float | None
    metrics: dict[str, Any]
    relationships: list[dict[str, Any]]
    failures: list[str]
    suite_path: str
    report_uri: str | None
    evaluated_at: str
    run_id: str | None = None  # the MLflow run holding the gate's full result
    checks: list[dict[str, Any]] = field(default_factory=list)
    not_applicable: dict[str, str] = field(default_factory=dict)
    summary: str = ""


def _suite_metrics(
    kind: str, fks: Sequence[str], orphan_fks: Collection[str] = ()
) -> dict[str, tuple[str | None, str]]:
    """Metric column -> (threshold field, bound) of a group suite, for :func:`load_suite`."""
    return {
        f"{prefix}__{fk}": (threshold, bound)
        for fk in fks
        for prefix, (threshold, bound, _) in _metrics_of(kind, fk, orphan_fks).items()
    }


def _integrity_share(
    r: Relationship,
    res: IntegrityResult,
    *,
    real: Mapping[str, pd.DataFrame],
    synthetic: Mapping[str, pd.DataFrame],
) -> float | NotApplicable:
    """The share of resolving keys; without any key set, why there is none to check."""
    if res.checked:
        return res.share
    if synthetic[r.child].empty:
        return NotApplicable(NA.EMPTY_CANDIDATE)
    if not real[r.child][r.child_column].notna().any():
        return NotApplicable(NA.NO_FOREIGN_KEY)  # the real child sets none either
    return NotApplicable(NA.ALL_NULL)  # the candidate dropped every key the real rows set


def _cross_table_metric(
    pairs: pd.DataFrame, *, all_pairs: float
) -> tuple[float | NotApplicable, str | None]:
    """Cross-table trends of one relationship: the pairs whose real data shows a trend, as
    the single-table gate scores them (:func:`lifecycle._pair_trends`); with none, every
    parent x child pair with a score (SDMetrics' InterTableTrends)."""
    if pairs.empty:
        return NotApplicable(NA.NO_CROSS_TABLE_PAIR), None
    counted, worst = lifecycle._pair_trends(pairs)
    if isinstance(counted, float):
        return counted, worst
    return lifecycle._or_na(all_pairs, NA.NOT_COMPUTED), None


def _current_candidates(home: SynthHome, tables: Sequence[str]) -> dict[str, str]:
    out = {}
    for t in tables:
        p = lifecycle.paths_for(home, t).candidate_info
        if not p.exists():
            raise SourceError(
                f"table '{t}': candidate.json is missing; materialize {t}_synthetic first."
            )
        out[t] = json.loads(p.read_text())["candidate_id"]
    return out


@_holding_group_lock("group gate", shared=True, verify_candidates=True)
def evaluate_group_gate(
    *,
    home: SynthHome,
    group: TableGroup,
    models: Mapping[str, ModelSpec],
    table: str,
    kind: str,
    expectations_dir: Path | None,
    tracking_uri: str | None,
) -> GroupGateResult:
    """Compute one group gate for one child table and validate it with its GE suite.

    The verdict is :func:`verdict.decide`, as for the table gates: integrity without any key
    set is not applicable (structural only when the real child sets none either), cardinality
    without parent rows fails, and cross-table trends scores the pairs with a real trend, or
    every pair when none has one (structurally not applicable without any pair)."""
    if kind not in GROUP_GATE_KINDS:
        raise ValueError(f"unknown group gate kind {kind!r}")
    rels = [r for r in group.checked_relationships if r.child == table]
    if not rels:
        raise ValueError(f"'{table}' has no parent in group '{group.name}'")
    sub = TableGroup(group.name, group.tables, tuple(rels))
    involved = [t for t in group.tables if t == table or any(r.parent == t for r in rels)]
    candidates = _current_candidates(home, involved)
    synthetic = _frames(home, involved, real=False)
    real = _frames(home, involved, real=True)
    # Reference tables are published as they are: their real rows are their twin.
    references = sorted({r.parent for r in rels if r.reference})
    real |= _frames(home, references, real=True)
    synthetic |= {t: real[t] for t in references}
    orphan_fks = {r.child_column for r in rels if r.orphans}
    metrics: dict[str, Any] = {}
    subjects: dict[str, str] = {}
    lines: list[dict[str, Any]] = []
    for r in rels:
        subjects |= {
            f"{prefix}__{r.child_column}": f"{r.child}.{r.child_column} -> {r.parent}"
            for prefix in _metrics_of(kind, r.child_column, orphan_fks)
        }
    if kind == "integrity":
        results = evaluate_integrity(group=sub, synthetic=synthetic)
        # The real orphan shares, for the keys allowed to have orphans only.
        real_results = (
            evaluate_integrity(
                group=TableGroup(group.name, group.tables, tuple(r for r in rels if r.orphans)),
                synthetic=real,
            )
            if orphan_fks
            else {}
        )
        for r, res in ((r, results[r.key]) for r in rels):
            fk = r.child_column
            share = _integrity_share(r, res, real=real, synthetic=synthetic)
            if r.orphans:
                real_orphans = 1.0 - real_results[r.key].share
                metrics |= {
                    f"orphan_share_gap__{fk}": share
                    if isinstance(share, NotApplicable)
                    else abs((1.0 - share) - real_orphans),
                    f"duplicate_parent_keys__{fk}": res.duplicate_parent_keys,
                }
                line = {
                    "real_orphan_share": real_orphans,
                    "synthetic_orphan_share": 1.0 - res.share,
                }
            else:
                metrics |= {
                    f"integrity__{fk}": share,
                    f"orphans__{fk}": res.orphans,
                    f"duplicate_parent_keys__{fk}": res.duplicate_parent_keys,
                }
                line = {}
            lines.append({"relationship": r.key, **asdict(res), **line})
    elif kind == "cardinality":
        results = evaluate_cardinality(
            group=sub, real=real, synthetic=synthetic, seed=models[table].spec.seed
        )
        for r, res in ((r, results[r.key]) for r in rels):
            # NaN: a side without parent rows (the real split has rows, so the candidate)
            reason = NA.EMPTY_CANDIDATE if synthetic[r.parent].empty else NA.NOT_COMPUTED
            metrics[f"cardinality__{r.child_column}"] = lifecycle._or_na(res.score, reason)
            lines.append({"relationship": r.key, **asdict(res)})
    else:
        tables = {
            t: lifecycle.load_metadata(lifecycle.paths_for(home, t), t)[0]
            for t in [*involved, *references]
        }
        trends = evaluate_cross_table_trends(
            group=sub, real=real, synthetic=synthetic, tables=tables,
            seed=models[table].spec.seed,
        )  # fmt: skip
        for r, res in ((r, trends[r.key]) for r in rels):
            name = f"cross_table_trends__{r.child_column}"
            metrics[name], worst = _cross_table_metric(res.pairs, all_pairs=res.score)
            if worst:
                subjects[name] += f", {worst}"
            lines.append(
                {
                    "relationship": r.key,
                    "counted_score": res.counted_score,
                    "all_pairs_score": res.score,
                    "pairs": len(res.pairs),
                    "counted_pairs": int(res.pairs["counted"].sum()) if len(res.pairs) else 0,
                }
            )
    fks = [r.child_column for r in rels]
    thresholds = models[table].spec.thresholds
    suite_path = ensure_group_suite(
        directory=expectations_dir, generated=home.suites_dir, table=table, kind=kind,
        foreign_keys=fks, thresholds=thresholds, orphan_fks=orphan_fks,
    )  # fmt: skip
    suite = gx_suites.load_suite(
        suite_path, thresholds=thresholds, metrics=_suite_metrics(kind, fks, orphan_fks)
    )
    verdict = decide(gate=kind, metrics=metrics, bounds=bounds_from_suite(suite), subjects=subjects)
    values = {k: lifecycle._json_metric(v) for k, v in metrics.items()}
    # The kind's first metric is its headline: worst value over the foreign keys.
    prefix, (field, _, fixed) = next(iter(_GROUP_METRICS[kind].items()))
    if kind == "integrity" and all(r.orphans for r in rels):
        prefix, (field, _, fixed) = next(iter(_ORPHAN_METRICS.items()))
    headline = [v for k, v in values.items() if k.startswith(f"{prefix}__") and v is not None]
    worst = max if prefix == "orphan_share_gap" else min  # a gap is worse when larger
    score = float(worst(headline)) if headline else float("nan")
    threshold = fixed if field is None else getattr(thresholds, field)
    checks = [c.line() for c in verdict.checks]
    report_uri = None
    run_id = json.loads(lifecycle.paths_for(home, table).candidate_info.read_text())["run_id"]
    if tracking_uri:
        report_uri = log_run_artifact(
            tracking_uri=tracking_uri, run_id=run_id, name=f"{table}.{kind}.json",
            payload={"candidates": candidates, "passed": verdict.passed, "metrics": values,
                     "not_applicable": verdict.not_applicable, "checks": checks,
                     "failures": list(verdict.failures), "relationships": lines,
                     "validation_result": verdict.validation},
            metrics={f"group.{table}.{k}": float(v) for k, v in values.items() if v is not None},
            artifact_path="group",
        )  # fmt: skip
    result = GroupGateResult(
        group=group.name,
        table=table,
        kind=kind,
        candidates=candidates,
        passed=verdict.passed,
        score=score,
        threshold=None if threshold is None else float(threshold),
        metrics=values,
        relationships=[lifecycle._plain(line) for line in lines],
        failures=list(verdict.failures),
        suite_path=str(suite_path),
        report_uri=report_uri,
        evaluated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        run_id=run_id,
        checks=checks,
        not_applicable={
            k: v.reason.value for k, v in metrics.items() if isinstance(v, NotApplicable)
        },
        summary=verdict.summary,
    )
    _write_json(group_paths(home, group).gate(table, kind), asdict(result))
    return result


def current_group_gates(*, home: SynthHome, group: TableGroup) -> dict[tuple[str, str], dict]:
    """Recorded group-gate verdicts that apply to the current candidates, by (table, kind)."""
    paths = group_paths(home, group)
    found = {}
    for t in children(group):
        for kind in GROUP_GATE_KINDS:
            p = paths.gate(t, kind)
            if not p.exists():
                continue
            v = json.loads(p.read_text())
            if v["candidates"] == _current_candidates(home, list(v["candidates"])):
                found[(t, kind)] = v
    return found


# -------------------------------------------------------------------------------- publish


def _unsampled_candidates(home: SynthHome, group: TableGroup) -> list[str]:
    """Tables whose current candidate is not the one the group's last sampling recorded (a
    table re-sampled on its own, or a group sampler killed halfway)."""
    slug = group_slug(group)
    recorded_path = group_paths(home, group).candidate
    if not recorded_path.exists():
        return [
            f"{group.name}: no complete sampling of the group is recorded; materialize "
            f"{slug}_group_synthetic and its checks again"
        ]
    recorded = json.loads(recorded_path.read_text()).get("candidates", {})
    current = _current_candidates(home, group.tables)
    return [
        f"{t}: its candidate is not the one the group sampled (sampled on its own since?); "
        f"materialize {slug}_group_synthetic and its checks again"
        for t in group.tables
        if recorded.get(t) != current[t]
    ]


@_holding_group_lock("group publish")
def publish_group_tables(
    *, home: SynthHome, group: TableGroup, models: Mapping[str, ModelSpec], keep: int | None = None
) -> dict[str, Release]:
    """Publish every table of the group as one release set, or nothing.

    Holds the group's refresh locks. Every table's candidate must be the one the group sampled
    (its id in the group's `candidate.json`), approved by its gates and the group gates; the
    bytes are re-hashed before publishing (:func:`lifecycle.publish_tables`).

    Raises:
        GateFailedError: Any per-table gate or group gate failed or was not evaluated for the
            current candidates, or a table's candidate is not the one the group sampled (the
            message lists every one); the store is left untouched.
        PublicationError: A candidate's bytes changed since its gates ran.
    """
    failures = _unsampled_candidates(home, group)
    for t in group.tables:
        try:
            lifecycle.approved_gates(home=home, table=t)
        except GateFailedError as exc:
            failures += [f"{t}: {f}" for f in exc.failures]
    gates = current_group_gates(home=home, group=group)
    for t in children(group):
        for kind in GROUP_GATE_KINDS:
            v = gates.get((t, kind))
            if v is None:
                failures.append(f"{t}: {kind} (not evaluated for the current candidates)")
            elif not v["passed"]:
                failures.append(f"{t}: {kind} (score {v['score']:.4g}, threshold {v['threshold']})")
    if failures:
        raise GateFailedError(table=f"group {group.name}", failures=failures)
    trained = _read_json(
        group_paths(home, group).strategy, group=group, step="the group synthesizer"
    )
    summary = {
        "name": group.name,
        "tables": list(group.tables),
        "strategy": trained["strategy"],
        "strategy_reason": trained["reason"],
        "relationships": [r.key for r in group.relationships],
    }
    extra = {}
    for t in group.tables:
        scores = {
            kind: {
                "score": v["score"],
                "threshold": v["threshold"],
                "passed": v["passed"],
                "metrics": v["metrics"],
            }  # fmt: skip
            for (table, kind), v in gates.items()
            if table == t
        }
        extra[t] = {"synthesis_group": summary, **({"group_scores": scores} if scores else {})}
    return lifecycle.publish_tables(
        home=home, models=[models[t] for t in group.tables], keep=keep, extra=extra
    )
