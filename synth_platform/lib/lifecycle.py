"""The per-table lifecycle as plain functions: split → train → sample → gates → publish.

Each step reads its inputs from, and writes its outputs to, the table's private directory
(`SYNTH_HOME/private/<table>/`), so steps pass file paths rather than DataFrames and can run in
separate processes. The Dagster assets in `synth_platform.defs` are thin calls to these.

A candidate's id is the SHA-256 of its Parquet file, so a gate verdict (which records the id) is
bound to the bytes the gate read, and the publisher re-hashes the file right before it publishes.
Every step that writes a table's private state holds that table's refresh lock
(:mod:`synth_platform.lib.locks`: sampling and publishing exclusively, gates shared), so two
refreshes of one table take turns instead of interleaving their writes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth_platform.lib import expectations as gx_suites
from synth_platform.lib import locks
from synth_platform.lib.errors import GateFailedError, PublicationError, SourceError
from synth_platform.lib.extract import read_source, to_frame
from synth_platform.lib.home import SynthHome
from synth_platform.lib.keys import KeyFormat
from synth_platform.lib.lake import LakeConfig
from synth_platform.lib.metadata import TableMetadata, derive_metadata
from synth_platform.lib.pii import PII_PATTERNS, PiiDomain, pii_domain, scan_for_pii
from synth_platform.lib.plan import ParentKey
from synth_platform.lib.progress import Meter, Progress
from synth_platform.lib.progress import report as report_line
from synth_platform.lib.publish import LAKE_DIR, Release, Staged, publish_group
from synth_platform.lib.refresh import (
    code_version,
    current_code_version,
    refresh_inputs,
    refresh_key,
    spec_digest,
)
from synth_platform.lib.report import GateLine, render_report, write_report
from synth_platform.lib.specs import ModelSpec, check_column_parameters
from synth_platform.lib.split import fingerprint, holdout_mask
from synth_platform.lib.synthesis import (
    FitResult,
    fit_synthesizer,
    to_arrow,
    to_arrow_array,
    write_candidate,
    write_frame,
)
from synth_platform.lib.verdict import (
    Bound,
    NotApplicable,
    NotApplicableReason,
    bounds_from_suite,
    decide,
    plain,
    row_findings,
)
from synth_platform.lib.warehouse import Warehouse

if TYPE_CHECKING:
    from synth_platform.lib.evaluation import FidelityReport, PrivacyReport

# The evaluation engine (SciPy, scikit-learn, numba, SDMetrics) and MLflow are imported by the
# functions that use them, not with this module: a refresh with nothing changed reads and
# fingerprints its sources and compares refresh keys, and needs neither (2 s of imports in each
# of its first steps).


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


def real_rows(paths: TablePaths) -> int:
    """The table's real rows, train and holdout (from the Parquet footers)."""
    return pq.read_metadata(paths.train).num_rows + pq.read_metadata(paths.holdout).num_rows


def table_lock(
    home: SynthHome, table: str, *, step: str, shared: bool = False
) -> AbstractContextManager[None]:
    """The refresh lock of one table (:func:`locks.refresh_lock` on its private folder)."""
    return locks.refresh_lock(
        home.table_dir(table), what="table", name=table, step=step, shared=shared
    )


@contextmanager
def tables_locked(home: SynthHome, tables: Sequence[str], *, step: str) -> Iterator[None]:
    """Exclusive refresh locks of several tables, taken in name order (no lock-order cycles)."""
    with ExitStack() as stack:
        for t in sorted(set(tables)):
            stack.enter_context(table_lock(home, t, step=step))
        yield


def _holding_table_lock(
    step: str, *, shared: bool = False, verify_candidate: bool = False
) -> Callable[[Callable], Callable]:
    """Run a keyword-only step (``home=`` and ``model=`` or ``table=``) under its table's
    refresh lock; a gate step is named after its ``kind``. With ``verify_candidate``, first
    check that the candidate file is the one `candidate.json` names (:func:`verify_candidate_file`),
    so a verdict is never bound to an id its bytes do not have."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def locked(*args: Any, **kwargs: Any) -> Any:
            table = kwargs["model"].name if "model" in kwargs else kwargs["table"]
            label = f"{kwargs['kind']} {step}" if "kind" in kwargs else step
            with table_lock(kwargs["home"], table, step=label, shared=shared):
                if verify_candidate:
                    verify_candidate_file(home=kwargs["home"], table=table)
                return fn(*args, **kwargs)

        return locked

    return wrap


def verify_candidate_file(*, home: SynthHome, table: str) -> str:
    """The candidate's id, after checking that the file's bytes hash to it.

    Raises:
        SourceError: No candidate, or its file is not the one the sampler recorded (changed
            since, or sampled by a synth_platform whose candidate ids were not content hashes).
    """
    paths = paths_for(home, table)
    cand = _read_json(paths.candidate_info, table=table, step=f"{table}_synthetic")
    if not paths.candidate.exists():
        raise SourceError(
            f"table '{table}': candidate.parquet is missing; materialize {table}_synthetic first."
        )
    digest = content_id(paths.candidate)
    if digest != cand["candidate_id"]:
        raise SourceError(
            f"table '{table}': candidate.parquet is not the file the sampler recorded "
            f"(its bytes hash to {digest[:12]}, candidate.json names {cand['candidate_id'][:12]}): "
            f"it changed since sampling. Materialize {table}_synthetic again, then its checks."
        )
    return digest


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = locks.temp_path(path)  # unique: concurrent writers never share a temp file
    with locks.removed_on_error(tmp):
        tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        tmp.replace(path)


def _read_json(path: Path, *, table: str, step: str) -> dict[str, Any]:
    if not path.exists():
        raise SourceError(f"table '{table}': {path.name} is missing; materialize {step} first.")
    return json.loads(path.read_text())


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = locks.temp_path(path)
    with locks.removed_on_error(tmp):
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
    #: The split files were kept: same source, spec, code and parent splits as last time.
    unchanged: bool = False


def _write_arrow(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = locks.temp_path(path)
    with locks.removed_on_error(tmp):
        pq.write_table(table, tmp)
        tmp.replace(path)


MIN_TRAIN_ROWS = 2
"""Fewest training rows a synthesized table may have (and one holdout row). A handful of rows
goes through every gate, where privacy and fidelity decide (a lookup of a few rows is mostly
copies and is blocked, by name); below two rows there is nothing to learn or measure."""


def split_table(
    *,
    home: SynthHome,
    warehouse: Warehouse,
    model: ModelSpec,
    parents: tuple[ParentKey, ...] = (),
    reference_keys: tuple[str, ...] = (),
) -> SplitResult:
    """Read the real table from the warehouse, derive its metadata, and write a seeded
    train/holdout split.

    With ``parents`` (the table is a child in a synthesis group; the parents' splits must
    exist), a row follows its parent: it is held out exactly when a parent row it references
    is, so whole families stay on one side and every training key resolves in the parents'
    training rows. Rows without a resolvable parent key are split on their own key.
    """
    source = read_source(
        warehouse=warehouse,
        relation=model.relation,
        table=model.name,
        exclude=tuple(model.spec.exclude),
    )
    real = to_frame(source)  # as the split files read back
    fp = fingerprint(real)
    paths = paths_for(home, model.name)
    split_key = refresh_key(
        {
            "source_fingerprint": fp,
            "spec_digest": spec_digest(model),
            "code_version": current_code_version(),
            "parents": {
                p.parent: _split_field(paths_for(home, p.parent), "split_key")
                for p in sorted(set(parents), key=str)
            },
            "reference_keys": list(reference_keys),
        }
    )
    if (
        _split_field(paths, "split_key") == split_key
        and paths.train.exists()
        and paths.holdout.exists()
    ):
        meta, _ = load_metadata(paths, model.name)
        return SplitResult(
            pq.read_metadata(paths.train).num_rows,
            pq.read_metadata(paths.holdout).num_rows,
            fp,
            meta,
            unchanged=True,
        )
    meta, sdv = derive_metadata(
        data=real,
        model=model,
        foreign_keys=tuple(dict.fromkeys(p.column for p in parents)),
        reference_keys=reference_keys,
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
    n_train, n_holdout = int((~held).sum()), int(held.sum())
    if (n_train < MIN_TRAIN_ROWS or n_holdout == 0) and not model.is_reference:
        raise SourceError(
            f"table '{model.name}': {len(real)} rows give {n_train} training and "
            f"{n_holdout} holdout rows; at least {MIN_TRAIN_ROWS} and 1 are needed to train "
            "and measure a synthesizer. Add rows or change `meta.synthetic.holdout`; a small public lookup "
            "table (codes, calendars, catalogues) can be declared `mode: reference` instead "
            "and published as it is."
        )
    # Written as Arrow with the source's exact types: the candidate (and the release) are
    # written with this schema, so the published types are the warehouse's.
    paths.metadata.unlink(missing_ok=True)  # no split key vouches for half-written files
    _write_arrow(source.filter(pa.array(~held)), paths.train)
    _write_arrow(source.filter(pa.array(held)), paths.holdout)
    _write_json(
        paths.metadata,
        {"table": meta.to_dict(), "sdv": sdv, "source_fingerprint": fp, "split_key": split_key},
    )
    return SplitResult(n_train, n_holdout, fp, meta)


def _split_field(paths: TablePaths, name: str) -> str | None:
    """A field the table's split recorded (``split_key``: the key its files were written
    under; ``source_fingerprint``); None when it was not split or did not record it."""
    if not paths.metadata.exists():
        return None
    return json.loads(paths.metadata.read_text()).get(name)


# --------------------------------------------------------------------------- train


def table_refresh_inputs(
    *, home: SynthHome, model: ModelSpec, expectations_dir: Path | None
) -> dict[str, Any]:
    """:func:`refresh.refresh_inputs` of the table's current split (its source fingerprint),
    with the source fingerprint of every parent its foreign keys point at.

    A parent in the same group is in the group's key anyway; a reference parent is not, yet
    its rows decide the child's gates (which codes resolve, the orphan share, the per-row
    shares of children): a changed lookup re-gates and re-publishes its children."""
    fp = _read_json(
        paths_for(home, model.name).metadata, table=model.name, step=f"{model.name}_split"
    )["source_fingerprint"]
    inputs = refresh_inputs(model=model, source_fingerprint=fp, expectations_dir=expectations_dir)
    parents = sorted({parent for _, parent, _ in model.foreign_keys})
    if parents:
        inputs["parents"] = {
            p: _split_field(paths_for(home, p), "source_fingerprint") for p in parents
        }
    return inputs


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment_id: str
    model_name: str | None
    model_version: str | None
    fit_seconds: float
    rows: int
    columns: int
    source_fingerprint: str
    #: :func:`refresh.refresh_key` of the inputs of this fit (None: not recorded).
    refresh_key: str | None = None
    refresh_inputs: dict[str, Any] | None = None


def fit_table(*, home: SynthHome, model: ModelSpec, progress: Progress | None = None) -> FitResult:
    """Fit the table's synthesizer on its training rows (no tracking, no files written): the
    pure part of :func:`train_table`, which can run in another process."""
    paths = paths_for(home, model.name)
    meta, sdv = load_metadata(paths, model.name)
    check_column_parameters(
        model=model.name, spec=model.spec, numerical=meta.numeric, modelled=meta.evaluated
    )
    train = pd.read_parquet(paths.train)
    return fit_synthesizer(
        train=train, metadata=meta, sdv_metadata=sdv, spec=model.spec, progress=progress
    )


@functools.cache
def _pip_requirements() -> tuple[str, ...]:
    """The model's pinned requirements, read once per process: each read parses five packages'
    metadata (~13 ms a fit, 2 cores), and what is installed does not change under a run."""
    from importlib.metadata import version

    names = ("sdv", "pandas", "numpy", "scikit-learn", "cloudpickle")
    return tuple(f"{p}=={version(p)}" for p in names)


def train_table(
    *,
    home: SynthHome,
    model: ModelSpec,
    tracking_uri: str,
    run_tags: Mapping[str, str] | None = None,
    refresh_inputs: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    fitted: FitResult | None = None,
) -> TrainResult:
    """Fit the synthesizer on the training rows and record the run in MLflow.

    ``run_tags`` are added to the MLflow run (the orchestrator's run id and asset key);
    ``refresh_inputs`` (:func:`refresh.refresh_inputs`) are recorded with the model and, through
    it, in the release manifest, where the next refresh compares them (skip-unchanged).
    ``progress`` receives one line per fitting stage. ``fitted``: the result of
    :func:`fit_table` run elsewhere (a group fits its tables in parallel processes).

    Raises:
        TrackingError: an http(s) tracking server does not answer (checked before the fit).
        SpecError: a synthesizer parameter names a column it cannot apply to.
        TrainingError: the synthesizer could not be fitted.
    """
    from synth_platform.lib.tracking import check_tracking_server, log_training

    check_tracking_server(tracking_uri)  # in seconds, before the fit rather than after it
    paths = paths_for(home, model.name)
    meta, sdv = load_metadata(paths, model.name)
    fp = _read_json(paths.metadata, table=model.name, step=f"{model.name}_split")[
        "source_fingerprint"
    ]
    if model.is_reference:
        return _record_reference(
            home=home, model=model, tracking_uri=tracking_uri, run_tags=run_tags,
            refresh_inputs=refresh_inputs, fingerprint=fp, meta=meta,
        )  # fmt: skip
    fit = fitted if fitted is not None else fit_table(home=home, model=model, progress=progress)
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
    tmp = locks.temp_path(paths.model)  # unique: concurrent fits never share a temp file
    with locks.removed_on_error(tmp):
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
        refresh_key=refresh_key(refresh_inputs) if refresh_inputs is not None else None,
        refresh_inputs=dict(refresh_inputs) if refresh_inputs is not None else None,
    )
    _write_json(paths.model_info, asdict(result))
    return result


#: What a `mode: reference` table's MLflow run, privacy check and release manifest record.
REFERENCE_DECLARATION = (
    "declared public reference data (`meta.synthetic.mode: reference` on the dbt model): "
    "published as it is, no personal data; the privacy gate is this declaration plus a PII scan"
)


def _record_reference(
    *,
    home: SynthHome,
    model: ModelSpec,
    tracking_uri: str,
    run_tags: Mapping[str, str] | None,
    refresh_inputs: Mapping[str, Any] | None,
    fingerprint: str,
    meta: TableMetadata,
) -> TrainResult:
    """A reference table is not fitted: its MLflow run records the declaration instead."""
    from synth_platform.lib.tracking import log_declaration

    paths = paths_for(home, model.name)
    rows = real_rows(paths)
    run = log_declaration(
        tracking_uri=tracking_uri,
        artifact_root=home.mlflow_artifacts,
        table=model.name,
        params={"mode": "reference", "declaration": REFERENCE_DECLARATION},
        tags={
            "synth_platform.table": model.name,
            "synth_platform.dbt_model": model.unique_id,
            "synth_platform.mode": "reference",
            "synth_platform.source_fingerprint": fingerprint,
            "synth_platform.code_version": code_version(),
            **(run_tags or {}),
        },
        metrics={"rows": rows, "columns": len(meta.columns)},
    )
    paths.model.unlink(missing_ok=True)  # nothing to sample from: the rows are published
    result = TrainResult(
        run_id=run.run_id,
        experiment_id=run.experiment_id,
        model_name=None,
        model_version=None,
        fit_seconds=0.0,
        rows=rows,
        columns=len(meta.columns),
        source_fingerprint=fingerprint,
        refresh_key=refresh_key(refresh_inputs) if refresh_inputs is not None else None,
        refresh_inputs=dict(refresh_inputs) if refresh_inputs is not None else None,
    )
    _write_json(paths.model_info, {**asdict(result), "synthesizer": "reference"})
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
    meta: TableMetadata, frames: list[pd.DataFrame], schema: pa.Schema | None = None
) -> tuple[dict[str, float], dict[str, PiiDomain]]:
    """Per PII column: its share of missing values, and its domain (type, range, the real
    values no fake one may equal), from the real rows and the split files' Arrow schema."""
    real = pd.concat([f[list(meta.pii)] for f in frames], ignore_index=True)
    nulls = {c: float(real[c].isna().mean()) for c in meta.pii}
    types = {f.name: f.type for f in schema} if schema is not None else {}
    forbidden = {c: pii_domain(real[c], types.get(c)) for c in meta.pii}
    return nulls, forbidden


def synthetic_keys(paths: TablePaths, column: str, rows: int, *, seed: int) -> np.ndarray:
    """``rows`` primary-key values in the format of the real keys (train and holdout), none of
    them a real key (:class:`~synth_platform.lib.keys.KeyFormat`)."""
    real = pd.concat(
        [pd.read_parquet(p, columns=[column])[column] for p in (paths.train, paths.holdout)],
        ignore_index=True,
    )
    return KeyFormat.learn(real).generate(rows, seed=seed, forbidden=real.dropna()).values


@_holding_table_lock("sample")
def sample_table(
    *,
    home: SynthHome,
    model: ModelSpec,
    synthesizer: Any | None = None,
    frame: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> CandidateResult:
    """Sample the candidate synthetic table (private) from the fitted model, in batches.

    Args:
        synthesizer: Use this fitted synthesizer instead of the saved one (tests plant
            defective synthesizers this way).
        frame: Rows already sampled for this table (by a multi-table synthesizer); they are
            written as the candidate instead of sampling.

    Holds the table's refresh lock. The candidate id is the SHA-256 of the file; the new file
    replaces the old one only once complete (:func:`_commit_candidate`).
    """
    paths = paths_for(home, model.name)
    locks.sweep_stale_temps(paths.root)  # what killed samplers left behind
    meta, _ = load_metadata(paths, model.name)
    info = _read_json(paths.model_info, table=model.name, step=f"{model.name}_synthesizer")
    if model.is_reference and frame is None:
        # Published as it is: every real row (train and holdout), in key order.
        frame = pd.concat(
            [pd.read_parquet(paths.train), pd.read_parquet(paths.holdout)], ignore_index=True
        )
        if meta.primary_key:
            frame = frame.sort_values(meta.primary_key, kind="stable", ignore_index=True)
    if synthesizer is None and frame is None:
        if not paths.model.exists():  # e.g. a table of a group fitted as one HMA model
            raise SourceError(
                f"table '{model.name}': there is no fitted single-table synthesizer "
                f"({paths.model.name}); materialize {model.name}_synthesizer first, or, for a "
                "table of a synthesis group, the group's synthetic step."
            )
        with open(paths.model, "rb") as fh:
            synthesizer = cloudpickle.load(fh)
    rows = model.spec.sample_rows(real_rows(paths))
    nulls, forbidden = ({}, {})
    if meta.pii:
        nulls, forbidden = _pii_context(
            meta,
            [pd.read_parquet(p, columns=list(meta.pii)) for p in (paths.train, paths.holdout)],
            pq.read_schema(paths.train),
        )
    start = time.perf_counter()
    schema = pq.read_schema(paths.train).remove_metadata()
    keys = (
        {meta.primary_key: synthetic_keys(paths, meta.primary_key, rows, seed=model.spec.seed)}
        if meta.primary_key and frame is None
        else None
    )
    staging = locks.temp_path(paths.candidate)  # written whole, then committed
    if frame is not None:
        written = write_frame(
            frame=frame, metadata=meta, schema=schema, seed=model.spec.seed,
            path=staging, null_shares=nulls, forbidden=forbidden,
        )  # fmt: skip
    else:
        written = write_candidate(
            synthesizer=synthesizer, metadata=meta, schema=schema, rows=rows,
            seed=model.spec.seed, batch_size=model.spec.batch_size, path=staging,
            null_shares=nulls, forbidden=forbidden, progress=progress, keys=keys,
        )  # fmt: skip
    candidate_id = _commit_candidate(paths, staging)
    result = CandidateResult(
        candidate_id=candidate_id,
        rows=written,
        seed=model.spec.seed,
        sample_seconds=time.perf_counter() - start,
        run_id=info["run_id"],
        path=str(paths.candidate),
    )
    _write_json(paths.candidate_info, asdict(result))
    return result


def content_id(path: Path) -> str:
    """The id of a candidate: the SHA-256 (hex) of its file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _commit_candidate(paths: TablePaths, staging: Path) -> str:
    """Make the complete file ``staging`` the table's candidate; returns its id (hash).

    The old candidate's verdicts and `candidate.json` go *before* its file is replaced: a
    process killed at any instant leaves either the old candidate with its verdicts, or a
    candidate that no verdict approves (and no `candidate.json` until the caller writes it).
    """
    with locks.removed_on_error(staging):
        candidate_id = content_id(staging)
        _forget_verdicts(paths)
        paths.candidate_info.unlink(missing_ok=True)
        staging.replace(paths.candidate)
    return candidate_id


def _forget_verdicts(paths: TablePaths) -> None:
    """Results of an older candidate no longer apply."""
    for kind in gx_suites.GATE_KINDS:
        paths.gate(kind).unlink(missing_ok=True)
    paths.report.unlink(missing_ok=True)


@_holding_table_lock("sample")
def replace_candidate(
    *, home: SynthHome, table: str, frame: pd.DataFrame, columns: Sequence[str] | None = None
) -> CandidateResult:
    """Overwrite a table's candidate with ``frame`` (same schema) under a new candidate id
    (its hash), holding the table's refresh lock.

    The multi-table path uses it after re-keying children to their synthetic parents. With
    ``columns``, only those columns of ``frame`` are new (its rows in the candidate's order):
    the others are kept as the candidate has them, not converted again (the re-keyed 1M-row
    transactions: 0.2 s instead of 0.8 s).
    """
    paths = paths_for(home, table)
    old = _read_json(paths.candidate_info, table=table, step=f"{table}_synthetic")
    schema = pq.read_schema(paths.candidate).remove_metadata()
    staging = locks.temp_path(paths.candidate)
    with locks.removed_on_error(staging):
        if columns is None:
            data = to_arrow(frame.reset_index(drop=True), schema)
        else:
            kept = pq.read_table(paths.candidate)
            if kept.num_rows != len(frame):
                raise ValueError(
                    f"{table}: {len(frame)} rows to replace the candidate's {kept.num_rows}"
                )
            arrays = [
                to_arrow_array(frame[f.name], f.type) if f.name in columns else kept[f.name]
                for f in schema
            ]
            data = pa.Table.from_arrays(arrays, schema=schema)
        pq.write_table(data, staging)
    candidate_id = _commit_candidate(paths, staging)
    result = CandidateResult(**{**old, "candidate_id": candidate_id, "rows": len(frame)})
    _write_json(paths.candidate_info, asdict(result))
    return result


# --------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class GateResult:
    """The verdict of one blocking gate on one candidate (:func:`verdict.decide`).

    ``metrics`` holds numbers, or ``None`` for a metric that is not applicable (its reason in
    ``not_applicable``); ``checks`` lists every metric of the gate's suites with its status;
    ``failures`` are safe to show anywhere (metric, score, column names, kind of violation).
    ``private_failures`` quote observed values and profiled bounds: they stay in the gate JSON
    in the private zone and the MLflow artifact, never in Dagster metadata or logs.
    """

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
    not_applicable: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    private_failures: list[str] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)  # e.g. the gate vs SDMetrics' QualityReport


NA = NotApplicableReason

#: A column the candidate leaves entirely empty counts as a failed column when the real share
#: of filled cells predicts at least this many filled candidate cells (fewer: it may be chance).
_EXPECTED_FILLED = 10


def _emptied_columns(real: pd.DataFrame, synth: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Columns the real rows fill but the candidate leaves entirely empty."""
    out = []
    for c in columns:
        if c in real.columns and c in synth.columns and len(synth):
            filled = float(real[c].notna().mean()) if len(real) else 0.0
            if filled * len(synth) >= _EXPECTED_FILLED and not synth[c].notna().any():
                out.append(c)
    return out


def _pair_trends(pairs: pd.DataFrame) -> tuple[float | NotApplicable, str | None]:
    """Column Pair Trends for a gate: the mean score of the pairs whose real data shows a
    trend, with a trend the candidate leaves undefined (a constant or empty column) scored 0;
    ``NO_PAIR_WITH_REAL_TREND`` when no pair shows one. Also names the worst pair."""
    from synth_platform.lib.evaluation import ASSOCIATION_THRESHOLD, CORRELATION_THRESHOLD

    if pairs.empty:
        return NotApplicable(NA.NO_PAIR_WITH_REAL_TREND), None
    correlation = (pairs["metric"] == "CorrelationSimilarity").to_numpy()
    real = pairs["real_trend"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        trend = np.where(
            correlation, np.abs(real) > CORRELATION_THRESHOLD, real > ASSOCIATION_THRESHOLD
        )
    trended = pairs.loc[trend]
    if trended.empty:
        return NotApplicable(NA.NO_PAIR_WITH_REAL_TREND), None
    scores = trended["score"].astype(float).fillna(0.0)
    worst = trended.loc[scores.idxmin()]
    return float(scores.mean()), f"worst pair: {worst['column_1']} x {worst['column_2']}"


def _fidelity_metrics(
    *,
    real: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synth: pd.DataFrame,
    meta: TableMetadata,
    model: ModelSpec,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], dict[str, Any], FidelityReport, dict[str, str]]:
    """Fidelity metrics (numbers or :class:`NotApplicable`), details, report, subjects.

    Column scores follow SDMetrics, except that a column the real rows fill but the
    candidate leaves empty scores 0 instead of being skipped; ``worst_column_shape`` is
    ``NO_COLUMN_SCORED`` when no column could be scored. Pair trends count a real trend the
    candidate leaves undefined as 0 (:func:`_pair_trends`); ``overall`` is the mean of the
    applicable properties (Column Shapes alone on a trend-free table).

    ``progress`` gets ``done / total rows (percent), rate`` lines for two stages: ``scores``
    (the real and synthetic rows compared by our scores, then by SDMetrics' QualityReport) and
    ``utility`` (the models' fitting rows and the holdout rows each scores).
    """
    from synth_platform.lib.evaluation import (
        compare_with_quality_report,
        evaluate_fidelity,
        evaluate_utility,
    )

    compared = len(real) + len(synth)
    meter = Meter(progress, stage=f"fidelity {model.name}: scores", total=2 * compared)

    rep = evaluate_fidelity(
        real=real, synthetic=synth, numeric=meta.numeric, datetime=meta.datetime,
        categorical=meta.categorical, seed=model.spec.seed,
    )  # fmt: skip
    meter.advance(compared)
    subjects: dict[str, str] = {}
    shapes = rep.shapes.set_index("column")["score"].astype(float)
    emptied = _emptied_columns(real, synth, list(shapes.index))
    shapes = shapes.where(~shapes.index.isin(emptied), 0.0).dropna()
    column_shapes: float | NotApplicable
    worst: float | NotApplicable
    if shapes.empty:
        column_shapes = worst = NotApplicable(NA.NO_COLUMN_SCORED)
    else:
        column_shapes, worst = float(shapes.mean()), float(shapes.min())
        subjects["worst_column_shape"] = f"worst column: {shapes.idxmin()}"
        lowest = ", ".join(str(c) for c in shapes.nsmallest(3).index)
        subjects["column_shapes"] = f"lowest columns: {lowest}"
    trends: float | NotApplicable
    if len(rep.shapes) < 2:
        trends = NotApplicable(NA.ONE_MODELLED_COLUMN if len(rep.shapes) else NA.NO_COLUMN_SCORED)
    else:
        trends, worst_pair = _pair_trends(rep.pairs)
        if worst_pair:
            subjects["column_pair_trends"] = worst_pair
    overall: float | NotApplicable = NotApplicable(NA.NO_COLUMN_SCORED)
    if isinstance(column_shapes, float):
        parts = [p for p in (column_shapes, trends) if isinstance(p, float)]
        overall = float(np.mean(parts))
        subjects["overall"] = subjects["worst_column_shape"]
    metrics: dict[str, Any] = {
        "overall": overall,
        "column_shapes": column_shapes,
        "column_pair_trends": trends,
        "worst_column_shape": worst,
    }
    if isinstance(overall, float):
        not_scored = {c: "faked PII" for c in meta.pii}
        not_scored |= {c: "key" for c in (meta.primary_key, *meta.foreign_keys) if c}
        comparison = compare_with_quality_report(
            real=real, synthetic=synth, numeric=meta.numeric, datetime=meta.datetime,
            categorical=meta.categorical, gate=overall, not_scored=not_scored,
            seed=model.spec.seed,
        )  # fmt: skip
        metrics["sdmetrics_quality_report"] = (
            NotApplicable(NA.NOT_COMPUTED) if comparison.error else comparison.plain
        )
        metrics["sdmetrics_quality_report_gate_columns"] = comparison.same_columns
    meter.advance(compared)
    details: dict[str, Any] = {
        "sdmetrics_comparison": comparison.notes if isinstance(overall, float) else [],
        "binning": "real",
        "emptied_columns": emptied,
        "shapes": rep.shapes.to_dict(orient="records"),
        "pairs": rep.pairs.to_dict(orient="records"),
    }
    target = model.spec.target
    reason = _utility_unmeasurable(train, holdout, synth, meta, target) if target else NA.NO_TARGET
    if reason is not None:
        metrics["utility"] = NotApplicable(reason)
        return metrics, details, rep, subjects
    meter = Meter(progress, stage=f"fidelity {model.name}: utility ({target})", total=0)
    util = evaluate_utility(
        train=train, holdout=holdout, synthetic=synth, target=target,
        numeric=meta.numeric, datetime=meta.datetime, categorical=meta.categorical,
        seed=model.spec.seed, progress=meter.set,  # (done, total): the rows with a target
    )  # fmt: skip
    ratio = plain(util.ratio)  # NaN when the real model's score is not positive
    metrics["utility"] = NotApplicable(NA.BASELINE_NOT_POSITIVE) if ratio is None else ratio
    metrics["utility_real_score"] = util.real_score
    metrics["utility_synthetic_score"] = util.synthetic_score
    subjects["utility"] = f"target: {target}"
    details["utility"] = _plain(util)
    return metrics, details, rep, subjects


def _utility_unmeasurable(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synth: pd.DataFrame,
    meta: TableMetadata,
    target: str,
) -> NotApplicableReason | None:
    """Why the utility ratio cannot be measured on these rows, if it cannot."""
    if not [c for c in meta.evaluated if c != target]:
        return NA.ONE_MODELLED_COLUMN
    if len(synth) == 0:
        return NA.EMPTY_CANDIDATE
    sides = [frame[target].dropna() for frame in (train, holdout)]
    if any(values.empty for values in sides):
        return NA.ALL_NULL
    if pd.concat(sides).nunique() < 2:
        return NA.CONSTANT_TARGET  # structural: the real table has nothing to predict
    if any(values.nunique() < 2 for values in sides):
        return NA.TOO_FEW_ROWS  # constant in one side only (a 1-row holdout): not a structure
    if not synth[target].notna().any():
        return NA.ALL_NULL
    return None


def _reference_privacy(
    synth: pd.DataFrame,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str], list[Bound]]:
    """The privacy gate of a `mode: reference` table: its declaration (recorded) and a scan
    of every text value for personal data (:func:`~synth_platform.lib.pii.scan_for_pii`);
    any value that looks personal blocks publication."""
    found = scan_for_pii(synth)
    metrics: dict[str, Any] = {"pii_like_values": sum(sum(h.values()) for h in found.values())}
    subjects = {"pii_like_values": ", ".join(
        f"{c} ({', '.join(f'{n} {k}' for k, n in h.items())})" for c, h in found.items()
    ) or "every text column"}  # fmt: skip
    for column, hits in found.items():
        metrics[f"pii_like_values__{column}"] = sum(hits.values())
        subjects[f"pii_like_values__{column}"] = f"{column}: {', '.join(hits)}"
    bounds = [Bound(metric=m, max_value=0.0) for m in metrics]
    details = {"declaration": REFERENCE_DECLARATION, "pii_scan": found,
               "pii_patterns": sorted(PII_PATTERNS)}  # fmt: skip
    return metrics, details, subjects, bounds


def _privacy_metrics(
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synth: pd.DataFrame,
    meta: TableMetadata,
    model: ModelSpec,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], dict[str, Any], PrivacyReport | None, dict[str, str]]:
    """Privacy metrics (numbers or :class:`NotApplicable`), details, report (``None`` when
    the distances could not be measured: no row or no column), subjects."""
    from synth_platform.lib.evaluation import evaluate_attacks, evaluate_privacy, find_pii_leaks
    from synth_platform.lib.evaluation.privacy import MAX_ROWS as PRIVACY_MAX_ROWS

    cols = list(meta.evaluated)
    seed = model.spec.seed
    subjects: dict[str, str] = {}
    rep: PrivacyReport | None = None
    unmeasured = NA.EMPTY_CANDIDATE if len(synth) == 0 else NA.NO_COLUMN_SCORED
    if len(synth) and cols:
        # Every synthetic row up to MAX_ROWS; above, a seeded sample whose effect the metrics
        # show (subsampled, dcr_share_sampling_error).
        rep = evaluate_privacy(
            train=train[cols], holdout=holdout[cols], synthetic=synth[cols],
            numeric=meta.numeric, datetime=meta.datetime, categorical=meta.categorical, seed=seed,
            max_rows=PRIVACY_MAX_ROWS,
            progress=Meter(progress, stage=f"privacy {model.name}: neighbour search", total=0).set,
        )  # fmt: skip
    # Every declared PII column, whatever its type (dates, numbers, text).
    leaks = (
        find_pii_leaks(
            synthetic=synth,
            real=pd.concat([train[list(meta.pii)], holdout[list(meta.pii)]], ignore_index=True),
            pii_columns=list(meta.pii),
        )
        if meta.pii
        else {}
    )
    metrics: dict[str, Any] = {"pii_leaks": int(sum(leaks.values()))}
    leaking = [str(c) for c, n in leaks.items() if n]
    if leaking:
        subjects["pii_leaks"] = f"columns: {', '.join(leaking)}"
    if rep is None:
        for name in ("exact_copies_train", "exact_copies_holdout", "dcr_share", "nndr_median",
                     "baseline_protection", "near_copies_excess"):  # fmt: skip
            metrics[name] = NotApplicable(unmeasured)
        metrics |= {"n_synthetic_evaluated": 0, "n_synthetic": len(synth), "subsampled": False}
    else:
        metrics |= {
            "exact_copies_train": rep.exact_copies_train,
            "exact_copies_holdout": rep.exact_copies_holdout,
            "common_copies_train": rep.common_copies_train,
            "dcr_share": rep.dcr_share,
            "near_copies_excess": _or_na(rep.near_copies_excess, NA.NOT_COMPUTED),
            "near_copies_synthetic": rep.near_copies_synthetic,
            "near_copies_holdout": rep.near_copies_holdout,
            # NaN below two reference rows per side (no second neighbour)
            "nndr_median": _or_na(rep.nndr_median, NA.TOO_FEW_ROWS),
            # None when random rows sit on training rows at the median (or not requested)
            "baseline_protection": _or_na(rep.baseline_protection, NA.BASELINE_NOT_POSITIVE),
            "n_synthetic_evaluated": rep.n_synthetic_evaluated,
            "n_synthetic": rep.n_synthetic,
            "subsampled": rep.subsampled,
            "dcr_share_sampling_error": rep.dcr_share_sampling_error,
        }
    details: dict[str, Any] = {"pii_leaks_by_column": leaks}
    risks = ("singling_out_risk", "linkability_risk", "inference_risk")
    if not model.spec.attacks:
        metrics |= {name: NotApplicable(NA.ATTACKS_OFF) for name in risks}
    elif rep is None or len(cols) < 2:
        # The attacks need two listed columns: one to know, one to find out.
        reason = unmeasured if rep is None else NA.ONE_MODELLED_COLUMN
        metrics |= {name: NotApplicable(reason) for name in risks}
    else:
        attacks = evaluate_attacks(
            train=train[cols], holdout=holdout[cols], synthetic=synth[cols],
            numeric=meta.numeric, datetime=meta.datetime, categorical=meta.categorical,
            seed=seed,
        )  # fmt: skip
        metrics["singling_out_risk"] = _or_na(attacks.singling_out.risk, NA.TOO_FEW_ROWS)
        metrics["linkability_risk"] = _or_na(attacks.linkability.risk, NA.TOO_FEW_ROWS)
        inference = {
            secret: plain(r.risk)
            for secret, r in attacks.inference.items()
            if plain(r.risk) is not None
        }
        if inference:
            secret = max(inference, key=inference.__getitem__)
            metrics["inference_risk"] = inference[secret]
            subjects["inference_risk"] = f"most exposed column: {secret}"
        else:
            metrics["inference_risk"] = NotApplicable(NA.TOO_FEW_ROWS)
        details["attacks"] = _plain(attacks)
    return metrics, details, rep, subjects


def _or_na(value: Any, reason: NotApplicableReason) -> float | NotApplicable:
    """``value`` if it is a number, else not applicable for ``reason``."""
    number = plain(value)
    return NotApplicable(reason) if number is None else number


def _validity_metrics(
    *, real: pd.DataFrame, synth: pd.DataFrame, meta: TableMetadata
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str], list[str]]:
    """Diagnostic metrics (numbers or :class:`NotApplicable`), details, subjects, and the
    row-level findings the suites cannot express (no rows; a column left entirely empty)."""
    from synth_platform.lib.evaluation import evaluate_diagnostic

    rep = evaluate_diagnostic(
        real=real, synthetic=synth, numeric=meta.numeric, datetime=meta.datetime,
        categorical=meta.categorical, primary_key=meta.primary_key,
    )  # fmt: skip
    # A property without a score: structural when the table has no such column, else the
    # candidate gave it nothing to score.
    empty = NA.EMPTY_CANDIDATE if len(synth) == 0 else NA.ALL_NULL
    metrics = {
        "boundary_adherence": _or_na(
            rep.boundary_adherence,
            NA.NO_NUMERIC_COLUMN if not (meta.numeric or meta.datetime) else empty,
        ),
        "category_adherence": _or_na(
            rep.category_adherence, NA.NO_CATEGORICAL_COLUMN if not meta.categorical else empty
        ),
        "key_uniqueness": _or_na(
            rep.key_uniqueness, NA.NO_PRIMARY_KEY if not meta.primary_key else empty
        ),
        "table_structure": _or_na(rep.table_structure, NA.NOT_COMPUTED),
        "diagnostic": _or_na(rep.overall, empty),
    }
    subjects = {}
    for metric, name in (
        ("boundary_adherence", "BoundaryAdherence"),
        ("category_adherence", "CategoryAdherence"),
        ("key_uniqueness", "KeyUniqueness"),
    ):
        rows = rep.details.loc[rep.details["metric"] == name]
        low = rows.loc[rows["score"].astype(float) < 1.0, "column"].astype(str).tolist()
        if low:
            subjects[metric] = f"columns: {', '.join(low[:5])}" + (" ..." if len(low) > 5 else "")
    findings = [] if len(synth) else ["table: the candidate has no rows"]
    findings += [
        f"{c}: every value is missing, the real column has values"
        for c in _emptied_columns(real, synth, list(meta.columns))
    ]
    return metrics, {"diagnostic": rep.details.to_dict(orient="records")}, subjects, findings


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


@_holding_table_lock("gate", shared=True, verify_candidate=True)  # see locks.py
def evaluate_gate(
    *,
    home: SynthHome,
    model: ModelSpec,
    kind: str,
    expectations_dir: Path | None,
    tracking_uri: str | None,
    progress: Progress | None = None,
) -> GateResult:
    """Compute a gate's metrics, validate them with its GE suites, and record the verdict.

    Suites: the user's hand-written ones in ``expectations_dir``, else ones generated from the
    current real rows into the home (:func:`expectations.ensure_suites`).

    The verdict is :func:`verdict.decide` (fail closed: a metric without a number never passes
    a bound nor drops one; see :data:`verdict.RULE`). Failures name the metric, its score, the
    column(s) and the kind of violation, never a real value; the validity suite's observed
    values and profiled bounds go to ``private_failures`` (private gate JSON, MLflow artifact).

    When this is the last of the three gates evaluated on the candidate, also renders the
    HTML evaluation report (private zone, and MLflow when tracking).
    """
    from synth_platform.lib.tracking import log_run_artifact

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
        generated=home.suites_dir,
        table=model.name,
        real=real,
        metadata=meta,
        thresholds=model.spec.thresholds,
        not_null=model.not_null_columns,
    )
    findings: list[str] = []
    report_line(
        progress, f"{kind} {model.name}: {len(synth):,} synthetic vs {len(real):,} real rows"
    )
    if kind == "fidelity":
        metrics, details, fid, subjects = _fidelity_metrics(
            real=real, train=train, holdout=holdout, synth=synth, meta=meta, model=model,
            progress=progress,
        )  # fmt: skip
        _save_fidelity(paths, fid)
        headline = "overall"
    elif kind == "privacy" and model.is_reference:
        metrics, details, subjects, reference_bounds = _reference_privacy(synth)
        headline = "pii_like_values"
    elif kind == "privacy":
        metrics, details, priv, subjects = _privacy_metrics(
            train=train, holdout=holdout, synth=synth, meta=meta, model=model, progress=progress
        )
        if priv is not None:
            _save_privacy(paths, priv)
        headline = "dcr_share"
    else:
        metrics, details, subjects, findings = _validity_metrics(real=real, synth=synth, meta=meta)
        headline = "validity"
    bounds = []
    results: dict[str, Any] = {}
    private_failures: list[str] = []
    for suite_kind in gx_suites.GATE_SUITES[kind]:
        if kind == "privacy" and model.is_reference:
            bounds += reference_bounds  # the declaration replaces the distance metrics
            continue
        suite = gx_suites.load_suite(suites[suite_kind], thresholds=model.spec.thresholds)
        if suite_kind != "validity":
            bounds += bounds_from_suite(suite)  # decided below, with the metrics
            continue
        # Row-level expectations over the candidate: named, counted, never quoted.
        outcome = gx_suites.validate(suite=suite, data=synth)
        results[suite_kind] = outcome.result_json
        public, private_failures = row_findings(outcome.outcomes, suite, synth)
        n = len(outcome.outcomes) + len(findings)
        failed = len(outcome.failures) + len(findings)
        metrics["row_expectations_met"] = (n - failed) / n if n else 1.0
        findings = public + findings
    if kind == "validity":
        parts = [
            p
            for p in (metrics["row_expectations_met"], metrics["diagnostic"])
            if plain(p) is not None
        ]
        metrics["validity"] = min(parts) if parts else NotApplicable(NA.NOT_COMPUTED)
    verdict = decide(
        gate=kind, metrics=metrics, bounds=bounds, subjects=subjects, findings=findings
    )
    results["metrics"] = verdict.validation
    checks = [c.line() for c in verdict.checks]
    threshold = (
        1.0
        if kind == "validity"
        else next((c["threshold"] for c in checks if c["metric"] == headline), None)
    )
    values = {k: _json_metric(v) for k, v in metrics.items()}
    report_uri = None
    if tracking_uri:
        report_uri = log_run_artifact(
            tracking_uri=tracking_uri,
            run_id=cand["run_id"],
            name=f"{kind}.json",
            payload={  # private: the MLflow run is in the private zone
                "candidate_id": cand["candidate_id"],
                "passed": verdict.passed,
                "metrics": values,
                "not_applicable": verdict.not_applicable,
                "checks": checks,
                "failures": list(verdict.failures),
                "private_failures": private_failures,
                "details": details,
                "validation_results": results,
            },
            metrics={f"gate.{kind}.{k}": v for k, v in values.items() if _is_number(v)},
        )
    score = plain(metrics[headline])
    result = GateResult(
        table=model.name,
        kind=kind,
        candidate_id=cand["candidate_id"],
        passed=verdict.passed,
        score=float("nan") if score is None else score,
        threshold=None if threshold is None else float(threshold),
        metrics=values,
        failures=list(verdict.failures),
        suite_path=str(suites[gx_suites.GATE_SUITES[kind][0]]),
        report_uri=report_uri,
        evaluated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        checks=checks,
        suite_paths=[str(suites[k]) for k in gx_suites.GATE_SUITES[kind]],
        run_id=cand.get("run_id"),
        not_applicable={
            k: v.reason.value for k, v in metrics.items() if isinstance(v, NotApplicable)
        },
        summary=verdict.summary,
        private_failures=private_failures,
        notes=list(details.get("sdmetrics_comparison", [])),
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


_GATE_LINE_FIELDS = ("gate", "metric", "value", "threshold", "direction", "passed")


def _load_reports(
    paths: TablePaths, gates: dict[str, dict[str, Any]]
) -> tuple[FidelityReport, PrivacyReport]:
    from synth_platform.lib.evaluation import FidelityReport, PrivacyReport

    root = paths.gate("fidelity").parent
    f, p = gates["fidelity"]["metrics"], gates["privacy"]["metrics"]
    nan = float("nan")  # a metric that was not applicable
    fid = FidelityReport(
        column_shapes=nan if f["column_shapes"] is None else f["column_shapes"],
        column_pair_trends=nan if f["column_pair_trends"] is None else f["column_pair_trends"],
        overall=nan if f["overall"] is None else f["overall"],
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
        nndr_median=nan if p["nndr_median"] is None else p["nndr_median"],
        baseline_protection=p.get("baseline_protection"),
        n_synthetic_evaluated=p["n_synthetic_evaluated"],
        n_reference=len(dcr_train),
        # absent from gates recorded before they existed; metrics hold booleans as 0/1
        n_synthetic=None if p.get("n_synthetic") is None else int(p["n_synthetic"]),
        subsampled=bool(p.get("subsampled")),
        dcr_share_sampling_error=p.get("dcr_share_sampling_error") or 0.0,
        common_copies_train=p.get("common_copies_train"),
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


@_holding_table_lock("report", shared=True)
def render_evaluation_report(
    *, home: SynthHome, model: ModelSpec, tracking_uri: str | None
) -> tuple[Path, str | None] | None:
    """Render the candidate's HTML report once every gate has a verdict; `None` before that.

    The report shows real distributions next to synthetic ones, so it stays in the private
    zone (and the MLflow run); returns its path and MLflow artifact URI.
    """
    from synth_platform.lib.tracking import log_run_artifact

    gates = current_gates(home=home, table=model.name)
    if set(gates) != set(gx_suites.GATE_KINDS):
        return None
    paths = paths_for(home, model.name)
    if gates["privacy"]["metrics"].get("dcr_share") is None:
        return None  # no distances to draw (a candidate without rows or compared columns)
    meta, _ = load_metadata(paths, model.name)
    cand = _read_json(paths.candidate_info, table=model.name, step=f"{model.name}_synthetic")
    info = _read_json(paths.model_info, table=model.name, step=f"{model.name}_synthesizer")
    fid, priv = _load_reports(paths, gates)
    cols = list(meta.evaluated)
    real = pd.concat(
        [pd.read_parquet(paths.train, columns=cols), pd.read_parquet(paths.holdout, columns=cols)],
        ignore_index=True,
    )
    lines = [
        GateLine(**{k: c[k] for k in _GATE_LINE_FIELDS})
        for kind in gx_suites.GATE_KINDS
        for c in gates[kind]["checks"]
    ]
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


def _json_metric(value: Any) -> Any:
    """A metric as the verdict JSON and metadata hold it: integers as integers, other finite
    numbers as floats, and ``None`` for anything else (not applicable, NaN, infinite)."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return int(value)
    return plain(value)


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
        "mode": model.spec.mode,
        **({"declaration": REFERENCE_DECLARATION} if model.is_reference else {}),
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
        # What the release was made from: the next refresh with the same key is skipped.
        "refresh_key": info.get("refresh_key"),
        "refresh_inputs": info.get("refresh_inputs"),
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
    if and only if every gate of every table passed on exactly the bytes published; ``extra``
    adds manifest entries.

    Holds the tables' refresh locks. Each candidate is copied to a private snapshot while it is
    hashed, and the snapshot is published only when its hash is the candidate id that every
    gate approved: the bytes published are the bytes hashed, whatever happens to the
    candidate file meanwhile. The manifest records that hash as ``data_sha256``.

    Raises:
        GateFailedError: A gate failed or was not evaluated for the current candidate.
        PublicationError: A candidate's bytes are not the ones its gates approved ("candidate
            bytes changed since the gates ran; re-run the checks"), or the store refused the
            release set. Nothing is published then; the previous releases stay.
    """
    with tables_locked(home, [m.name for m in models], step="publish"), ExitStack() as cleanup:
        verdicts = {m.name: approved_gates(home=home, table=m.name) for m in models}
        releases, changed = {}, []
        for m in models:
            candidate = paths_for(home, m.name).candidate
            if not candidate.exists():
                raise PublicationError(
                    f"table '{m.name}': the candidate file {candidate} is missing; "
                    f"materialize {m.name}_synthetic and its checks again."
                )
            snapshot = locks.temp_path(candidate)
            cleanup.callback(snapshot.unlink, missing_ok=True)
            digest = _copy_hashed(candidate, snapshot)
            manifest = release_manifest(home=home, model=m, verdicts=verdicts[m.name])
            approved = {manifest["candidate_id"]}
            approved |= {v["candidate_id"] for v in verdicts[m.name].values()}
            if approved != {digest}:
                changed.append(
                    f"table '{m.name}': candidate bytes changed since the gates ran; re-run the "
                    f"checks: materialize {m.name}_synthetic and its checks again (the file "
                    f"hashes to {digest[:12]}, the gates approved "
                    f"{', '.join(sorted(a[:12] for a in approved))})"
                )
                continue
            manifest["data_sha256"] = digest
            manifest.update((extra or {}).get(m.name, {}))
            releases[m.name] = Staged(snapshot, manifest)
        if changed:
            raise PublicationError(
                "; ".join(changed) + ". Nothing was published; the previous releases stay."
            )
        return publish_group(
            store=home.public_dir,
            releases=releases,
            keep=keep,
            lake=LakeConfig.from_env(home.public_dir / LAKE_DIR),
        )


def _copy_hashed(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst``, returning the SHA-256 of the bytes copied."""
    digest = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        for chunk in iter(lambda: fin.read(1 << 20), b""):
            digest.update(chunk)
            fout.write(chunk)
    return digest.hexdigest()


def publish_table(*, home: SynthHome, model: ModelSpec, keep: int | None = None) -> Release:
    """Publish the current candidate as a new release, if and only if every gate passed on
    exactly its bytes (see :func:`publish_tables`)."""
    return publish_tables(home=home, models=[model], keep=keep)[model.name]
