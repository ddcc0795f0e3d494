"""Distance-based privacy checks for synthetic tables.

Distance between two rows (the SDMetrics ``calculate_dcr`` definition): the mean over the
listed columns of a per-column distance in ``[0, 1]``:

* numeric and datetime: ``min(|a - b| / range, 1)``, where ``range`` is ``max - min`` of the
  real rows (train and holdout together; with ``ranges="reference"``, of the table searched,
  as in SDMetrics); when that range is 0,
  the distance is 0 for equal values and 1 otherwise;
* categorical and boolean: 0 when equal, 1 otherwise (missing is a category of its own);
* a missing against a present value is 1, two missing values are 0.

Nearest neighbours are exact. Rows are mapped to an L1 embedding in which the Manhattan
distance equals the sum of the per-column distances: a present numeric value, range-normalised
to ``v``, becomes ``v``, or the two features ``(v/2, -v/2)`` and a missing one ``(1, 0)`` in a
column with missing values, so ``|v - w|`` separates two present values and exactly 1
separates missing from present. Categorical columns stay out of the embedding: with few
numeric columns the reference rows are grouped by their combination of categorical values (a
row whose combination differs in ``m`` columns is at least ``m`` away, missing counting as a
category and all categories unseen in the reference as one), and a k-d tree (SciPy's
``cKDTree``, Manhattan metric) searches the numeric embedding within a group. Otherwise, and
for query rows holding a value outside the reference range (the embedding cannot express the
clipping at 1), a compiled (numba), multi-threaded, tiled brute force evaluates
``sum(min(|q - r|, 1))`` over one float feature per column (missing numeric values as a far
sentinel, categoricals as integer codes), keeping only the nearest sums per query row. Every
search goes through the query rows in chunks, so memory stays bounded whatever the table sizes
and an interrupt takes effect between chunks.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numba
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from synth_platform.lib.evaluation._columns import (
    Kind,
    as_float,
    as_object,
    column_kinds,
    datetime_ns,
    ordered_columns,
    require_columns,
)

__all__ = ["MAX_ROWS", "PrivacyReport", "evaluate_privacy", "find_pii_leaks"]

# A k-d tree beats the compiled brute force only in few embedded features (measured, 2 cores:
# 50k x 50k rows of 2, 3, 4 numeric columns 0.14/0.24/0.50 s vs 1.7/1.7/2.3 s). Categorical
# columns do not enter the tree: the reference is grouped by their combination instead.
_TREE_MAX_DIMENSIONS = 6
_MAX_BLOCKS = 4_096  # categorical combinations in a reference, above: brute force
_MAX_QUERY_BLOCKS = 4 * _MAX_BLOCKS  # the same in a query (a Python loop per combination)
_MAX_UNSEEN_BLOCKS = 64  # query combinations absent from the reference (see `few_unseen`)
_TREE_MIN_ROWS = 64  # combinations with fewer reference rows are scanned by brute force
_TREE_CHUNK = 65_536  # query rows per k-d tree call (a fraction of a second)
_CHUNK_WORK = 2 * 10**9  # query x reference rows x features per brute-force kernel call
_SMALL_WORK = 2_000_000  # below, NumPy instead of the compiled kernel (a parallel call's cost)
#: Work of one brute-force search (query rows x reference rows x columns) above which both
#: sides are sampled down by one factor (``subsampled`` and the DCR share's sampling error say
#: so on the check): without it, exact search on a wide table grows as rows squared (wide 100k
#: x 100k x 80 columns measured ~20 s per search on 2 cores; 1M rows x 56 columns would take
#: hours). Tables the k-d tree search serves (few numeric columns) are never sampled below
#: ``max_rows``.
BRUTE_FORCE_BUDGET = 10**12
COMMON_ROWS = 5
"""A combination of values held by at least this many training rows is common (k-anonymous
with k = 5): a synthetic row equal to it singles out no one. ``exact_copies_train`` counts the
copies of rarer rows, synthpop's "replicated uniques" (``sdc``) with k = 5 instead of 2; a
zero-inflated table whose (0, 0, grade) rows are two thirds of the real rows must be able to
produce them. Copies of common combinations are reported (``common_copies_train``)."""
BASELINE_ROWS = 10_000  # random rows of the baseline protection (an estimate of a median)
_MIN_SAMPLED = 1_000  # rows the budget never samples a table below
_BOUNDED_SLICE = 1_024  # query rows per bounded k-d tree call (one bound for all of them)
_TREE_THREADED_ROWS = 4_096  # fewer query rows: one k-d tree thread (threads start per call)
_DECIMALS = 12  # distances are rounded so that ties are exact


@dataclass(frozen=True)
class PrivacyReport:
    """Privacy of a synthetic table relative to the train and holdout tables.

    Attributes:
        exact_copies_train: Synthetic rows (all of them, with multiplicity) equal in every
            listed column to a train row whose combination of values fewer than
            ``COMMON_ROWS`` train rows share.
        exact_copies_holdout: Synthetic rows equal to any holdout row.
        common_copies_train: Synthetic rows equal to a combination that at least
            ``COMMON_ROWS`` train rows share (reported, not a disclosure).
        dcr_share: Share of evaluated synthetic rows closer to train than to holdout, a tie
            counting 0.5. About 0.5 for a generator that does not memorise its train rows;
            near 1 for one that copies them.
        dcr_train: Per evaluated synthetic row, the distance to its closest train row.
        dcr_holdout: Per evaluated synthetic row, the distance to its closest holdout row.
        nndr_median: Median over evaluated synthetic rows of the ratio of the distances to the
            nearest and second-nearest train rows (when both are 0: 1 on a combination that
            ``COMMON_ROWS`` or more train rows share, else 0).
        baseline_protection: SDMetrics' ``DCRBaselineProtection`` score: the median of
            ``dcr_train`` over the median distance to train of uniformly random rows, capped
            at 1; ``None`` when the random rows' median distance is 0 or it was not requested.
        n_synthetic_evaluated: Number of synthetic rows behind the distance figures (all of
            them up to ``max_rows``).
        n_reference: Number of train rows, and of holdout rows, searched.
        near_copies_synthetic: Share of evaluated synthetic rows within ``NEAR_COPY_DISTANCE``
            of some train row, searched against ALL train rows (up to ``max_rows``).
        near_copies_holdout: The same share for holdout rows: how often unseen real rows sit
            on a train row anyway (repeated value combinations).
        near_copies_excess: ``near_copies_synthetic - near_copies_holdout``. ``dcr_share``
            searches train subsampled to the holdout's size, so a copy finds its original only
            with probability about holdout/train: lightly perturbed copies of training rows
            scored 0.54-0.60 there (passing) and escape ``exact_copies``; this catches them.
        n_synthetic: Number of synthetic rows (``None`` in reports recorded without it).
        subsampled: Whether any table was sampled down to ``max_rows`` rows for the distance
            figures (train sampled to the holdout's size is the design, not a cap).
        dcr_share_sampling_error: Standard error of ``dcr_share`` due to evaluating a random
            subsample of the synthetic rows (finite-population corrected), measured on the
            evaluated rows; 0 when every synthetic row was evaluated.
    """

    exact_copies_train: int
    exact_copies_holdout: int
    dcr_share: float
    dcr_train: np.ndarray
    dcr_holdout: np.ndarray
    nndr_median: float
    baseline_protection: float | None
    n_synthetic_evaluated: int
    n_reference: int
    near_copies_excess: float = math.nan
    near_copies_synthetic: float = math.nan
    near_copies_holdout: float = math.nan
    n_synthetic: int | None = None
    subsampled: bool = False
    dcr_share_sampling_error: float = 0.0
    common_copies_train: int | None = None


#: A synthetic row this close to a train row (mean per-column distance, numbers scaled by the
#: real range) is a near copy: a 1e-6 nudge of one column of a copied row is far below it,
#: one category of ten changed (0.1) or a 1% move of every number (0.01) far above it.
NEAR_COPY_DISTANCE = 1e-4
#: Rows evaluated per table by default: every row of tables up to this size.
MAX_ROWS = 1_000_000


def evaluate_privacy(
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    numeric: Sequence[str],
    datetime: Sequence[str],
    categorical: Sequence[str],
    max_rows: int = MAX_ROWS,
    seed: int = 0,
    baseline: bool = True,
    ranges: Literal["shared", "reference"] = "shared",
    progress: Callable[[int, int], None] | None = None,
) -> PrivacyReport:
    """Measure how close synthetic rows sit to the train rows compared with holdout rows.

    The distance is the one in the module docstring (SDMetrics' ``calculate_dcr``); numeric
    ranges come from all real rows (train and holdout) by default, or from each searched
    table as SDMetrics does with ``ranges="reference"``.

    Rows, all sampled with ``seed``: every synthetic row is evaluated up to ``max_rows``
    (default 1,000,000); train and holdout are both sampled down to ``n_reference =
    min(len(train), len(holdout), max_rows)`` rows so that neither side wins by being larger;
    near copies search every train row (up to ``max_rows``). Above ``max_rows`` a seeded
    sample is evaluated and the report says so (``subsampled``, ``dcr_share_sampling_error``).
    Exact copies are counted on all rows of every table. Distances are exact at every size
    (see ``_ReferenceIndex``) and memory stays bounded: searches go through the query rows in
    chunks and keep only the nearest distances.

    Differences from SDMetrics' ``DCROverfittingProtection``: SDMetrics counts a tie as closer
    to holdout and does not equalise the reference sizes; ``dcr_share`` counts a tie as 0.5.
    The random baseline draws each numeric column uniformly between its train minimum and
    maximum (integers for integer dtypes), each datetime uniformly in its range and each
    categorical uniformly among its observed values, with the train share of missing cells,
    as SDMetrics' ``DCRBaselineProtection`` does; at most :data:`BASELINE_ROWS` of them (its
    score is a ratio of medians).

    Args:
        train: Real rows the synthesizer was trained on.
        holdout: Real rows it never saw.
        synthetic: Synthetic rows.
        numeric: Numeric columns (booleans belong in ``categorical``).
        datetime: Datetime columns (datetime dtype, or strings that pandas can parse).
        categorical: Categorical and boolean columns.
        max_rows: Row cap for the synthetic rows evaluated and for each reference table.
        seed: Seed for subsampling and for the random baseline.
        baseline: Whether to compute ``baseline_protection`` (one more neighbour search).
        ranges: ``"shared"`` (default, used by the gate) normalises numeric distances by the
            range of all real rows, so train and holdout distances share one metric;
            ``"reference"`` uses each searched table's own range, exactly as SDMetrics'
            ``calculate_dcr`` does (for side-by-side comparisons). With per-reference ranges
            one outlier in a small holdout rescales every holdout distance: on a 300-row
            table a GaussianCopula sample scored 0.80 that way and 0.50 with shared ranges.
        progress: Called with (rows searched, rows to search) after each chunk of every
            search, so that a long evaluation can report how far it got.

    Returns:
        The report.

    Raises:
        ValueError: If no column is listed, a column is listed twice or missing from a table,
            a table is empty, or ``max_rows < 1``.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    kinds = column_kinds(numeric=numeric, datetime=datetime, categorical=categorical)
    if not kinds:
        raise ValueError("no columns to compare: list at least one column")
    columns = ordered_columns(train, kinds)
    frames = {"train": train, "holdout": holdout, "synthetic": synthetic}
    require_columns(frames, columns)
    for label, frame in frames.items():
        if len(frame) == 0:
            raise ValueError(f"{label} data has no rows")

    # Every table is encoded once; the searches work on subsamples of these arrays.
    encoded = dict(zip(frames, _encode(list(frames.values()), columns, kinds), strict=True))
    synthetic_hashes, train_hashes, holdout_hashes = _row_hashes(
        [encoded["synthetic"], encoded["train"], encoded["holdout"]]
    )
    train_unique, train_counts = np.unique(train_hashes, return_counts=True)
    on_train = np.isin(synthetic_hashes, train_unique)
    common = np.isin(synthetic_hashes, train_unique[train_counts >= COMMON_ROWS])
    exact_train = int((on_train & ~common).sum())
    common_train = int(common.sum())
    exact_holdout = int(np.isin(synthetic_hashes, holdout_hashes).sum())

    # Both searches must use one metric: with per-reference ranges, one outlier in a small
    # holdout sample rescales every holdout distance and skews the share (measured: 0.80 on
    # a GaussianCopula sample whose shared-range share is 0.50). Ranges come from all real rows.
    shared = (
        [encoded["train"].rows.numeric, encoded["holdout"].rows.numeric]
        if ranges == "shared"
        else None
    )
    rng = np.random.default_rng(seed)
    n_reference = min(len(train), len(holdout), max_rows)
    n_query, n_near = min(len(synthetic), max_rows), min(len(train), max_rows)
    n_holdout_query = min(len(holdout), max_rows)
    # The compiled kernel costs about as much per row pair for a few columns as for 64, so
    # the budget counts at least 64 per pair (measured: a 4-column table with ~45k category
    # combinations took 165 s at 200k rows, ~650 s per search at the old budget).
    work = max(n_query, n_holdout_query) * max(n_reference, n_near) * max(len(columns), 64)
    if work > BRUTE_FORCE_BUDGET and _brute_forced(encoded["train"].rows, shared):
        factor = math.sqrt(BRUTE_FORCE_BUDGET / work)
        n_query, n_reference, n_near, n_holdout_query = (
            max(min(n, _MIN_SAMPLED), int(n * factor))
            for n in (n_query, n_reference, n_near, n_holdout_query)
        )
    evaluated = _subsample(len(synthetic), n_query, rng)
    synthetic_rows = encoded["synthetic"].rows.take(evaluated)
    train_rows = encoded["train"].rows.take(_subsample(len(train), n_reference, rng))
    holdout_rows = encoded["holdout"].rows.take(_subsample(len(holdout), n_reference, rng))
    # Near copies (see PrivacyReport) search every train row: their own seed stream, so the
    # subsamples above do not depend on it.
    near_rng = np.random.default_rng([seed, 1])
    full_train = encoded["train"].rows.take(_subsample(len(train), n_near, near_rng))
    holdout_eval = encoded["holdout"].rows.take(_subsample(len(holdout), n_holdout_query, near_rng))

    n_evaluated = synthetic_rows.n_rows
    searches = 3 + int(baseline)  # synthetic rows against train, holdout, all train, random
    tick = _Progress(progress, searches * n_evaluated + holdout_eval.n_rows).tick
    train_index = _ReferenceIndex(train_rows, scale_from=shared)
    to_train = train_index.nearest(synthetic_rows, k=min(2, n_reference), progress=tick)
    dcr_train = to_train[:, 0]
    holdout_index = _ReferenceIndex(holdout_rows, scale_from=shared)
    dcr_holdout = holdout_index.nearest(synthetic_rows, k=1, progress=tick)[:, 0]
    del holdout_index
    closer = np.where(dcr_train < dcr_holdout, 1.0, np.where(dcr_train == dcr_holdout, 0.5, 0.0))

    if to_train.shape[1] == 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            # On a combination COMMON_ROWS or more training rows share (both distances 0) a
            # row is as close to one of them as to the next: ratio 1. On a rarer one it is a
            # copy: ratio 0 (and `exact_copies_train` counts it).
            tied = np.where(common[evaluated], 1.0, 0.0)
            ratio = np.where(to_train[:, 1] > 0, to_train[:, 0] / to_train[:, 1], tied)
        nndr_median = float(np.median(ratio))
    else:
        nndr_median = math.nan
    del to_train

    full_index = _ReferenceIndex(full_train, scale_from=shared)
    near_synthetic = float(
        np.mean(full_index.nearest(synthetic_rows, k=1, progress=tick)[:, 0] <= NEAR_COPY_DISTANCE)
    )
    near_holdout = float(
        np.mean(full_index.nearest(holdout_eval, k=1, progress=tick)[:, 0] <= NEAR_COPY_DISTANCE)
    )
    del full_index

    protection: float | None = None
    if baseline:
        # A median of random rows' distances: 10,000 random rows estimate it closely. Uniformly
        # random categories make nearly every row a combination the real rows never show, and
        # the blocked search's loop per unseen combination and block grew far faster than the
        # rows (a 1,458-airport star schema: 5 min of a 6-min run at 50k flights, 17 min at
        # 300k): such a query takes the compiled brute force, bounded by these 10,000 rows.
        n_random = min(n_evaluated, BASELINE_ROWS)
        random_rows = _random_rows(train, train_rows, columns, kinds, n_random, rng)
        searched = train_index.nearest(random_rows, k=1, progress=None, few_unseen=True)
        tick(n_evaluated)
        random_median = float(np.median(searched))
        if random_median > 0:
            protection = min(float(np.median(dcr_train)) / random_median, 1.0)

    # What evaluating a subsample costs: the standard error of the share over a simple random
    # sample of the synthetic rows (finite-population corrected; 0 when every row is in).
    sampling_error = 0.0
    if 1 < n_evaluated < len(synthetic):
        variance = float(np.var(closer, ddof=1)) / n_evaluated * (1 - n_evaluated / len(synthetic))
        sampling_error = math.sqrt(variance)

    return PrivacyReport(
        exact_copies_train=exact_train,
        exact_copies_holdout=exact_holdout,
        common_copies_train=common_train,
        dcr_share=float(closer.mean()),
        dcr_train=dcr_train,
        dcr_holdout=dcr_holdout,
        nndr_median=nndr_median,
        baseline_protection=protection,
        n_synthetic_evaluated=n_evaluated,
        n_reference=n_reference,
        near_copies_excess=near_synthetic - near_holdout,
        near_copies_synthetic=near_synthetic,
        near_copies_holdout=near_holdout,
        n_synthetic=len(synthetic),
        subsampled=n_evaluated < len(synthetic)
        or n_reference < min(len(train), len(holdout))
        or full_train.n_rows < len(train)
        or holdout_eval.n_rows < len(holdout),
        dcr_share_sampling_error=sampling_error,
    )


def _brute_forced(reference: _Rows, shared: Sequence[np.ndarray] | None) -> bool:
    """Whether searches in ``reference`` take the brute force (too many numeric dimensions or
    categorical combinations for the blocked k-d tree search), judged on a 50k-row sample."""
    sample = reference.take(_subsample(reference.n_rows, 50_000, np.random.default_rng(0)))
    return _ReferenceIndex(sample, scale_from=shared)._blocked_layout() is None


class _Progress:
    """Rows done across the searches of one evaluation, reported to a callback."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int) -> None:
        self._callback = callback
        self._total = total
        self._done = 0

    def tick(self, rows: int) -> None:
        self._done += rows
        if self._callback is not None:
            self._callback(self._done, self._total)


def _is_text(column: pd.Series) -> bool:
    dtype = column.dtype
    return (
        pd.api.types.is_object_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _comparable(column: pd.Series) -> tuple[str, np.ndarray]:
    """A column's non-missing values in a form equal values share across representations:
    ``("datetime", int64 UTC ns)`` for datetimes, dates and `date` objects, ``("number",
    float64)`` for numbers and `Decimal` objects, else ``("text", str objects)``."""
    from decimal import Decimal

    values = column.dropna()
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    if pd.api.types.is_bool_dtype(values):
        return "text", values.astype(str).to_numpy(dtype=object)
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime", datetime_ns(values)
    if pd.api.types.is_numeric_dtype(values):
        return "number", values.to_numpy(dtype=np.float64)
    items = values.tolist()
    if items and all(
        isinstance(v, Decimal | int | float) and not isinstance(v, bool) for v in items
    ):
        return "number", np.array([float(v) for v in items], dtype=np.float64)
    if items and all(isinstance(v, date) for v in items):
        return "datetime", datetime_ns(pd.Series(pd.to_datetime(items, utc=True)))
    return "text", np.array([str(v) for v in items], dtype=object)


def find_pii_leaks(
    *,
    real_values: Iterable[object] = (),
    synthetic: pd.DataFrame,
    real: pd.DataFrame | None = None,
    pii_columns: Sequence[str] = (),
) -> dict[str, int]:
    """Count synthetic cells that reproduce a real PII value verbatim.

    Two scans, whose counts are reported per synthetic column:

    * every string-like column (object, string or category dtype) against every real PII
      string (``real_values``, plus the text values of ``real[pii_columns]``): a real e-mail
      replayed in any text column is a leak;
    * every declared PII column (``pii_columns``, present in ``real`` and ``synthetic``),
      whatever its type, against the real values of the same column: dates and timestamps
      compare as instants, numbers (including `Decimal`) as floats, anything else as text.

    Args:
        real_values: Real PII strings (names, e-mails, phone numbers...). Non-string entries
            are ignored; matching is exact (no case or whitespace folding).
        synthetic: The synthetic table.
        real: The real rows (train and holdout), for the per-column scan.
        pii_columns: The declared PII columns.

    Returns:
        For every string-like column of ``synthetic`` and every declared PII column, in column
        order, the number of its cells equal to a real value.
    """
    strings = {v for v in real_values if isinstance(v, str)}
    typed: dict[str, int] = {}
    if real is not None:
        for name in pii_columns:
            if name not in real.columns or name not in synthetic.columns:
                continue
            kind, values = _comparable(real[name])
            if kind == "text":
                strings.update(values.tolist())
            synth_kind, synth = _comparable(synthetic[name])
            if synth_kind != kind:  # e.g. real dates published as text: compare as text
                values = _comparable(real[name].astype(str))[1]
                synth = _comparable(synthetic[name].astype(str))[1]
            if not len(values):
                typed[str(name)] = 0
            elif values.dtype == object:
                # A hash table: np.isin on object arrays compares every pair (quadratic:
                # 4.5e9 string comparisons for 67k x 67k names, minutes).
                typed[str(name)] = int(pd.Series(synth, dtype=object).isin(values).sum())
            else:
                typed[str(name)] = int(np.isin(synth, values).sum())
    values = list(strings)
    leaks: dict[str, int] = {}
    for name in synthetic.columns:
        column = synthetic[name]
        count = None
        if _is_text(column):
            count = int(column.isin(values).sum()) if values else 0
        if str(name) in typed:
            count = max(count or 0, typed[str(name)])
        if count is not None:
            leaks[str(name)] = count
    return leaks


# ------------------------------------------------------------------------ exact copies


_HASH_MULTIPLIERS = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def _row_hashes(tables: list[_Encoded]) -> list[np.ndarray]:
    """64-bit hash of each row of each table over a dtype-independent form of its columns.

    Numeric cells are compared as ``float64`` (``-0.0`` equal to ``0.0``, every missing value
    equal), datetimes as ``int64`` nanoseconds and categorical cells by their text
    (``str(value)``, missing equal to missing), so ``True`` equals ``"True"`` and ``1`` equals
    ``"1"``. Categorical cells get codes from one factorization over all the tables.
    """
    sizes = [t.rows.n_rows for t in tables]
    hashes = [np.zeros(n, dtype=np.uint64) for n in sizes]
    n_continuous = tables[0].rows.numeric.shape[1]
    for j in range(n_continuous):
        for t, h in zip(tables, hashes, strict=True):
            if j in t.datetime_ns:
                key = t.datetime_ns[j].view(np.uint64)
            else:
                values = t.rows.numeric[:, j] + 0.0  # folds -0.0 into 0.0
                values[np.isnan(values)] = np.nan  # one bit pattern for every missing value
                key = values.view(np.uint64)
            _combine(h, key, j)
    for c in range(len(tables[0].text_codes)):
        for t, h in zip(tables, hashes, strict=True):
            _combine(h, t.text_codes[c].astype(np.uint64), n_continuous + c)
    return hashes


def _combine(h: np.ndarray, key: np.ndarray, position: int) -> None:
    """Fold one column's 64-bit keys into the running row hashes (splitmix64 finaliser)."""
    x = h ^ (key + np.uint64((position + 1) * 0x9E3779B97F4A7C15 % (1 << 64)))
    x ^= x >> np.uint64(30)
    x *= _HASH_MULTIPLIERS[0]
    x ^= x >> np.uint64(27)
    x *= _HASH_MULTIPLIERS[1]
    x ^= x >> np.uint64(31)
    h[:] = x


def _text_codes(joined: np.ndarray, codes: np.ndarray, uniques: np.ndarray) -> np.ndarray:
    """Codes equal exactly where ``str`` of the values is equal (missing: -1).

    ``codes``/``uniques`` come from ``pandas.factorize(joined)``, whose equality is Python's.
    That is text equality when every value is a string, or every value a bool; otherwise
    (``1 == 1.0 == True``, ``0.0 == -0.0``) the text itself is factorized.
    """
    if len(uniques) and not (
        all(isinstance(u, str) for u in uniques)
        or all(isinstance(u, bool | np.bool_) for u in uniques)
    ):
        missing = pd.isna(joined)
        text = np.where(missing, None, joined.astype(str)).astype(object)
        codes, _ = pd.factorize(text, use_na_sentinel=True)
    return codes


# ----------------------------------------------------------------------------- distances


@dataclass(frozen=True)
class _Rows:
    """Rows of one table: floats (datetimes in ns) and categorical codes."""

    n_rows: int
    numeric: np.ndarray  # (rows, numeric columns) float64, NaN missing
    # int64 codes, one array per categorical column, shared by every table of one evaluation
    # (pandas.factorize over all of them, so Python equality of values); missing is -1
    categorical: list[np.ndarray]

    @property
    def n_columns(self) -> int:
        return self.numeric.shape[1] + len(self.categorical)

    def take(self, rows: np.ndarray) -> _Rows:
        if rows.size == self.n_rows and (rows.size == 0 or rows[-1] == rows.size - 1):
            return self  # every row, in order (_subsample returns sorted indices)
        return _Rows(rows.size, self.numeric[rows], [c[rows] for c in self.categorical])


@dataclass(frozen=True)
class _Encoded:
    """A whole table, encoded once for the searches and the exact-copy hashes."""

    rows: _Rows
    datetime_ns: dict[int, np.ndarray]  # numeric block column -> int64 ns (NaT: int64 min)
    text_codes: list[np.ndarray]  # per categorical column, equal where str(value) is equal


def _encode(
    frames: list[pd.DataFrame], columns: list[str], kinds: dict[str, Kind]
) -> list[_Encoded]:
    """Encode the tables together (categorical codes are shared between them)."""
    continuous = [c for c in columns if kinds[c] != "categorical"]
    blocks, datetimes = [], []
    for frame in frames:
        numeric = np.empty((len(frame), len(continuous)), dtype=np.float64)
        ns_columns: dict[int, np.ndarray] = {}
        for j, name in enumerate(continuous):
            if kinds[name] == "datetime":
                ns = datetime_ns(frame[name])
                ns_columns[j] = ns
                numeric[:, j] = ns
                numeric[ns == np.iinfo(np.int64).min, j] = np.nan
            else:
                numeric[:, j] = as_float(frame[name], kinds[name])
        blocks.append(numeric)
        datetimes.append(ns_columns)
    codes: list[list[np.ndarray]] = [[] for _ in frames]
    text: list[list[np.ndarray]] = [[] for _ in frames]
    bounds = np.cumsum([0] + [len(frame) for frame in frames])
    for name in columns:
        if kinds[name] != "categorical":
            continue
        joined = np.concatenate([as_object(frame[name]) for frame in frames])
        joint, uniques = pd.factorize(joined, use_na_sentinel=True)
        joint = joint.astype(np.int64, copy=False)
        joint_text = _text_codes(joined, joint, uniques)
        for i in range(len(frames)):
            codes[i].append(joint[bounds[i] : bounds[i + 1]])
            text[i].append(joint_text[bounds[i] : bounds[i + 1]])
    return [
        _Encoded(_Rows(len(frame), blocks[i], codes[i]), datetimes[i], text[i])
        for i, frame in enumerate(frames)
    ]


def _subsample(n_rows: int, size: int, rng: np.random.Generator) -> np.ndarray:
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, size=size, replace=False))


def _local_codes(shared_codes: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Shared codes to a reference's codes: ``observed`` 0..n-1, missing n, unseen n + 1."""
    n = observed.size
    if n == 0:
        return np.where(shared_codes < 0, 0, 1)
    position = np.minimum(np.searchsorted(observed, shared_codes), n - 1)
    found = observed[position] == shared_codes
    return np.where(shared_codes < 0, n, np.where(found, position, n + 1))


@dataclass(frozen=True)
class _Blocks:
    """Reference rows grouped by their categorical combination (see ``_ReferenceIndex``)."""

    split: np.ndarray  # per numeric column: embedded as two features (the reference has NaN)
    keys: np.ndarray  # sorted combination keys, one per block
    order: np.ndarray  # reference rows, block after block
    bounds: np.ndarray  # block b holds order[bounds[b]:bounds[b + 1]]
    codes: np.ndarray  # (blocks, categorical columns) local codes of each block


@dataclass(frozen=True)
class _Query:
    """Numeric query features of one blocked search (all rows of one ``nearest`` call)."""

    features: np.ndarray  # (rows, numeric columns) scaled, clipped, missing as _MISSING
    embedding: np.ndarray  # (rows, dimensions) the L1 embedding searched by the k-d trees
    expressible: np.ndarray  # rows whose distances the embedding gives exactly


class _ReferenceIndex:
    """Exact nearest-neighbour search in the mixed-type distance against one reference table.

    Two exact strategies. With few numeric columns (at most ``_TREE_MAX_DIMENSIONS`` embedded
    features) and few categorical combinations in the reference (``_MAX_BLOCKS``), the
    reference rows are grouped by their combination of categorical values: a reference row
    whose combination differs from the query row's in ``m`` columns is at least ``m`` away
    (each differing column adds exactly 1 to the sum), so each query row is searched within its
    own combination first (a k-d tree over the numeric embedding of the module docstring, or
    the compiled brute force for small groups and for query rows the embedding cannot express),
    then only in the combinations with ``m`` below its ``k``-th distance so far, which is
    usually none. Otherwise the compiled brute force scans the whole reference. Both run in
    chunks of query rows (Python's signal handlers run between chunks, so an interrupt takes
    effect within about a second) and keep only the ``k`` nearest sums per row.
    """

    def __init__(self, reference: _Rows, *, scale_from: Sequence[np.ndarray] | None = None) -> None:
        self._reference = reference
        numeric = reference.numeric
        # The ranges that normalise numeric distances; by default the reference's own.
        lo = np.full(numeric.shape[1], np.inf)
        hi = np.full(numeric.shape[1], -np.inf)
        for block in [numeric] if scale_from is None else scale_from:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns
                if block.shape[0]:
                    lo = np.fmin(lo, np.nanmin(block, axis=0))
                    hi = np.fmax(hi, np.nanmax(block, axis=0))
        self._lo = np.where(np.isfinite(lo), lo, 0.0)
        span = hi - lo
        self._span = np.where(np.isfinite(span), span, np.nan)  # NaN: column all missing
        self._reference_scaled = self._scale(numeric)
        # Per categorical column: the observed values get codes 0..n-1, missing gets n and
        # every value the reference lacks shares n + 1.
        self._categories: list[np.ndarray] = []  # sorted shared codes seen in the reference
        self._reference_codes: list[np.ndarray] = []
        for shared_codes in reference.categorical:
            observed = np.unique(shared_codes[shared_codes >= 0])
            self._categories.append(observed)
            self._reference_codes.append(_local_codes(shared_codes, observed))
        self._widths = [len(categories) + 2 for categories in self._categories]
        self._reference_features: np.ndarray | None = None  # built on the first brute search
        self._blocks: _Blocks | None = None
        self._blocks_checked = False
        self._block_features: dict[int, np.ndarray] = {}  # block -> (columns, rows) features
        self._block_trees: dict[int, cKDTree] = {}

    def _scale(self, numeric: np.ndarray) -> np.ndarray:
        """Range-normalise so that references lie in [0, 1] (0/1 'differs' for zero ranges)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = (numeric - self._lo) / self._span
        constant = self._span == 0
        if constant.any():
            scaled[:, constant] = (numeric[:, constant] != self._lo[constant]).astype(float)
        all_missing = np.isnan(self._span)
        if all_missing.any():
            scaled[:, all_missing] = 0.0
        scaled[np.isnan(numeric)] = np.nan
        return scaled

    def _codes(self, query: _Rows, rows: slice = slice(None)) -> list[np.ndarray]:
        """Query categorical codes in the reference's code space (see ``__init__``)."""
        return [
            _local_codes(shared_codes[rows], observed)
            for shared_codes, observed in zip(query.categorical, self._categories, strict=True)
        ]

    def nearest(
        self,
        query: _Rows,
        *,
        k: int,
        progress: Callable[[int], None] | None = None,
        few_unseen: bool = False,
    ) -> np.ndarray:
        """Distances (mean per-column distance) from each query row to its ``k`` nearest.

        Args:
            query: The query rows.
            k: Neighbours per row (1 or 2); missing neighbours (fewer reference rows) are inf.
            progress: Called after each chunk with the number of query rows it finished.
            few_unseen: Take the compiled brute force (the same distances) when more than
                :data:`_MAX_UNSEEN_BLOCKS` of the query's categorical combinations are not in
                the reference: each one is searched block by block in a Python loop. For
                small queries only (the brute force compares every pair).

        Returns:
            Array of shape ``(query rows, k)``, ascending along each row, rounded to 12
            decimals so that equal distances compare equal.
        """
        tick = progress or (lambda rows: None)
        blocks = self._blocked_layout()
        distances = None
        if blocks is not None:
            distances = self._blocked(blocks, query, k, tick, few_unseen=few_unseen)
        if distances is None:
            distances = self._brute(query, k, tick)
        return np.round(distances / self._reference.n_columns, _DECIMALS)

    # ------------------------------------------------------------------ blocked search

    def _blocked_layout(self) -> _Blocks | None:
        """The reference grouped by categorical combination, or ``None`` when not worth it."""
        if self._blocks_checked:
            return self._blocks
        self._blocks_checked = True
        split = np.isnan(self._reference_scaled).any(axis=0)
        if self._reference_scaled.shape[1] + int(split.sum()) > _TREE_MAX_DIMENSIONS:
            return None
        if math.prod(self._widths) >= 2**62:  # combination keys must fit in int64
            return None
        keys = _combination_keys(self._reference_codes, self._widths, self._reference.n_rows)
        unique, inverse = np.unique(keys, return_inverse=True)
        if unique.size > _MAX_BLOCKS:
            return None
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(unique.size + 1))
        codes = _stack_codes(self._reference_codes, keys.size)[order[bounds[:-1]]]
        self._blocks = _Blocks(split, unique, order, bounds, codes)
        return self._blocks

    def _blocked(
        self,
        blocks: _Blocks,
        query: _Rows,
        k: int,
        tick: Callable[[int], None],
        *,
        few_unseen: bool = False,
    ) -> np.ndarray | None:
        """Blocked exact search (class docstring); ``None`` when the query has too many
        categorical combinations for a per-combination loop."""
        codes = self._codes(query)
        keys = _combination_keys(codes, self._widths, query.n_rows)
        order = np.argsort(keys, kind="stable")
        combinations, starts = np.unique(keys[order], return_index=True)
        if combinations.size > _MAX_QUERY_BLOCKS:
            return None
        bounds = np.append(starts, keys.size)
        position = np.minimum(np.searchsorted(blocks.keys, combinations), blocks.keys.size - 1)
        same = np.where(blocks.keys[position] == combinations, position, -1)
        if few_unseen and int((same < 0).sum()) > _MAX_UNSEEN_BLOCKS:
            return None

        scaled = np.clip(self._scale(query.numeric), -1.0, 2.0)
        missing = np.isnan(scaled)
        # The embedding gives |v - w| without the clipping at 1: exact for values in the
        # reference's [0, 1], and for missing values where the reference has some too.
        expressible = (((scaled >= 0) & (scaled <= 1)) | (missing & blocks.split)).all(axis=1)
        search = _Query(
            np.where(missing, _MISSING, scaled), _embedding(scaled, blocks.split), expressible
        )
        best = np.full((keys.size, k), np.inf)
        # Within each row's own combination the categorical columns add 0.
        for c in range(combinations.size):
            rows = order[bounds[c] : bounds[c + 1]]
            if same[c] < 0:
                tick(rows.size)
                continue
            for chunk in self._chunks(blocks, same[c], rows):
                best[chunk] = self._search_block(blocks, same[c], search, chunk, k)
                tick(chunk.size)
        # A combination differing in m columns adds exactly m: search it only for the rows
        # whose k-th distance so far exceeds m (ties at m would not change the k-th value).
        query_codes = _stack_codes(codes, keys.size)
        for c in range(combinations.size):
            rows = order[bounds[c] : bounds[c + 1]]
            if not best[rows, k - 1].max() > 1:
                continue
            mismatch = (blocks.codes != query_codes[rows[0]]).sum(axis=1)
            # Fewest differing columns first, then the largest blocks (likelier to hold a close
            # row, which tightens the bound for the blocks after them).
            for b in np.lexsort((-np.diff(blocks.bounds), mismatch)):
                m = int(mismatch[b])
                if m == 0:
                    continue
                rows = rows[best[rows, k - 1] > m]
                if rows.size == 0:
                    break
                for chunk in self._chunks(blocks, b, rows):
                    limit = best[chunk, k - 1] - m
                    found = self._search_block(blocks, b, search, chunk, k, limit)
                    for _ in range(m):  # the brute force's order: numeric terms, then 1s
                        found += 1.0
                    best[chunk] = np.sort(np.hstack([best[chunk], found]), axis=1)[:, :k]
        return best

    def _chunks(self, blocks: _Blocks, block: int, rows: np.ndarray) -> Iterator[np.ndarray]:
        size = blocks.bounds[block + 1] - blocks.bounds[block]
        work = max(1, size * self._reference_scaled.shape[1])
        step = _TREE_CHUNK if size >= _TREE_MIN_ROWS else max(_TREE_CHUNK, _CHUNK_WORK // work)
        for start in range(0, rows.size, step):
            yield rows[start : start + step]

    def _search_block(
        self,
        blocks: _Blocks,
        block: int,
        search: _Query,
        rows: np.ndarray,
        k: int,
        limit: np.ndarray | None = None,
    ) -> np.ndarray:
        """The ``k`` smallest numeric sums ``sum(min(|q - r|, 1))`` of ``rows`` over one block.

        Sums are those of the brute-force kernel (same terms, same order): the k-d tree only
        picks ``k + 1`` candidates, whose sums are then recomputed column by column. With
        ``limit`` (one per row of ``rows``), sums above it may come back as inf: the tree
        prunes beyond it.
        """
        size = int(blocks.bounds[block + 1] - blocks.bounds[block])
        out = np.full((rows.size, k), np.inf)
        if search.features.shape[1] == 0:  # no numeric column: every block row is at 0
            out[:, : min(k, size)] = 0.0
            return out
        reference_t = self._block_features.get(block)
        if reference_t is None:
            members = blocks.order[blocks.bounds[block] : blocks.bounds[block + 1]]
            scaled = self._reference_scaled[members]
            reference_t = np.ascontiguousarray(np.where(np.isnan(scaled), _MISSING, scaled).T)
            self._block_features[block] = reference_t
            if size >= _TREE_MIN_ROWS:
                self._block_trees[block] = cKDTree(_embedding(scaled, blocks.split))
        tree = self._block_trees.get(block)
        inside = search.expressible[rows] if tree is not None else np.zeros(rows.size, bool)
        outside = np.flatnonzero(~inside)
        step = max(1, _CHUNK_WORK // (size * reference_t.shape[0]))  # interruptible calls
        for start in range(0, outside.size, step):
            part = outside[start : start + step]
            features = search.features[rows[part]]
            if features.size * size <= _SMALL_WORK:  # a compiled call costs more here
                out[part] = _nearest_small(features, reference_t, k)
            else:
                out[part] = _nearest_l1_clipped(features, reference_t, k)
        if tree is not None and inside.any():
            at = np.flatnonzero(inside)
            n_candidates = min(k + 1, size)
            if limit is None:
                parts, bounds = [at], [np.inf]
            else:
                # A scalar bound per tree call: rows in order of their limit, in slices.
                at = at[np.argsort(limit[at], kind="stable")]
                parts = [at[i : i + _BOUNDED_SLICE] for i in range(0, at.size, _BOUNDED_SLICE)]
                # Slack for the tree's own rounding: a candidate too many is harmless.
                bounds = [float(limit[part[-1]]) * (1 + 1e-9) + 1e-12 for part in parts]
            for part, bound in zip(parts, bounds, strict=True):
                workers = -1 if part.size >= _TREE_THREADED_ROWS else 1  # threads start per call
                _, index = tree.query(
                    search.embedding[rows[part]],
                    k=n_candidates,
                    p=1,
                    distance_upper_bound=bound,
                    workers=workers,
                )
                index = index.reshape(part.size, n_candidates)
                found = index < size  # beyond the bound the tree returns index == size
                index = np.where(found, index, 0)
                sums = np.zeros(index.shape)
                for j in range(reference_t.shape[0]):
                    term = np.abs(search.features[rows[part], j][:, None] - reference_t[j][index])
                    sums += np.minimum(term, 1.0)
                sums[~found] = np.inf
                sums.sort(axis=1)
                out[part, : min(k, n_candidates)] = sums[:, :k]
        return out

    # --------------------------------------------------------------------- brute force

    def _brute(self, query: _Rows, k: int, tick: Callable[[int], None]) -> np.ndarray:
        """Exact brute force in the per-column form ``sum(min(|q - r|, 1))``.

        Every column becomes one float feature: a numeric value its scaled value (query values
        clipped to ``[-1, 2]``), a missing numeric value the sentinel ``_MISSING`` (at least 1
        from any present value, 0 from another missing one), and a categorical value its
        integer code (``min(|a - b|, 1)`` is 1 exactly when the codes differ). A compiled,
        multi-threaded kernel scans the reference in tiles, keeping only the ``k`` smallest
        sums per query row; query rows go through in chunks of about ``_CHUNK_WORK`` row-pair
        features, so memory stays bounded whatever the table sizes.
        """
        if self._reference_features is None:
            self._reference_features = np.ascontiguousarray(
                _features(self._reference_scaled, self._reference_codes).T
            )
        reference_t = self._reference_features
        # Enough rows per call to keep every thread busy (tiles of _SCREEN_QUERY_TILE rows).
        step = max(
            2 * _SCREEN_QUERY_TILE * numba.get_num_threads(),
            _CHUNK_WORK // max(1, reference_t.size),
        )
        out = np.empty((query.n_rows, k))
        for start in range(0, query.n_rows, step):
            rows = slice(start, min(start + step, query.n_rows))
            scaled = np.clip(self._scale(query.numeric[rows]), -1.0, 2.0)
            features = _features(scaled, self._codes(query, rows))
            out[rows] = _nearest_l1_clipped(features, reference_t, k)
            tick(features.shape[0])
        return out


def _nearest_small(query: np.ndarray, reference_t: np.ndarray, k: int) -> np.ndarray:
    """:func:`_nearest_l1_clipped` for small problems in NumPy (the same sums, same order)."""
    sums = np.zeros((query.shape[0], reference_t.shape[1]))
    for j in range(reference_t.shape[0]):
        sums += np.minimum(np.abs(query[:, j][:, None] - reference_t[j][None, :]), 1.0)
    out = np.full((query.shape[0], k), np.inf)
    kept = min(k, sums.shape[1])
    if kept:
        out[:, :kept] = np.sort(np.partition(sums, kept - 1, axis=1)[:, :kept], axis=1)
    return out


def _combination_keys(codes: list[np.ndarray], widths: list[int], n_rows: int) -> np.ndarray:
    """One int64 per row identifying its combination of local categorical codes."""
    keys = np.zeros(n_rows, dtype=np.int64)
    radix = 1
    for c, width in zip(codes, widths, strict=True):
        keys += c.astype(np.int64) * radix
        radix *= width
    return keys


def _stack_codes(codes: list[np.ndarray], n_rows: int) -> np.ndarray:
    return np.column_stack(codes) if codes else np.zeros((n_rows, 0), dtype=np.int64)


def _embedding(scaled: np.ndarray, split: np.ndarray) -> np.ndarray:
    """L1 embedding of scaled numeric columns (module docstring), C-contiguous.

    A column the reference has no missing value in is its scaled value ``v``; otherwise it
    becomes ``(v/2, -v/2)`` when present and ``(1, 0)`` when missing, which puts a missing
    value at distance exactly 1 from every present value in ``[0, 1]``.
    """
    parts = []
    for j in range(scaled.shape[1]):
        v = scaled[:, j]
        if not split[j]:
            parts.append(np.nan_to_num(v, nan=_MISSING))  # missing: not expressible anyway
            continue
        missing = np.isnan(v)
        half = np.where(missing, 0.0, v / 2.0)
        parts.append(np.where(missing, 1.0, half))
        parts.append(-half)
    if not parts:
        return np.zeros((scaled.shape[0], 0))
    return np.ascontiguousarray(np.column_stack(parts))


_MISSING = 8.0  # feature value of a missing numeric cell; present values lie in [-1, 2]
_QUERY_TILE = 8  # query rows per kernel tile
_REFERENCE_TILE = 256  # reference rows per kernel tile
_SCREEN_TILE = 256  # reference rows per float32 screening tile
_SCREEN_QUERY_TILE = 64  # query rows per screening tile (reuse of each reference tile)


def _features(scaled: np.ndarray, codes: list[np.ndarray]) -> np.ndarray:
    """One float feature per column (see :meth:`_ReferenceIndex._brute`), C-contiguous."""
    out = np.empty((scaled.shape[0], scaled.shape[1] + len(codes)))
    out[:, : scaled.shape[1]] = np.where(np.isnan(scaled), _MISSING, scaled)
    for i, c in enumerate(codes):
        out[:, scaled.shape[1] + i] = c
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _nearest_l1_clipped_kernel(query, reference_t, k, out):  # pragma: no cover - compiled
    n_query, n_features = query.shape
    n_reference = reference_t.shape[1]
    n_tiles = (n_query + _QUERY_TILE - 1) // _QUERY_TILE
    for tile in numba.prange(n_tiles):
        q0 = tile * _QUERY_TILE
        nq = min(_QUERY_TILE, n_query - q0)
        acc = np.empty((_QUERY_TILE, _REFERENCE_TILE))
        best = np.full((_QUERY_TILE, 2), np.inf)
        for r0 in range(0, n_reference, _REFERENCE_TILE):
            nr = min(_REFERENCE_TILE, n_reference - r0)
            acc[:, :nr] = 0.0
            for f in range(n_features):
                row = reference_t[f, r0 : r0 + nr]
                for qi in range(nq):
                    v = query[q0 + qi, f]
                    a = acc[qi]
                    for j in range(nr):
                        d = abs(v - row[j])
                        a[j] += d if d < 1.0 else 1.0
            for qi in range(nq):
                b0 = best[qi, 0]
                b1 = best[qi, 1]
                for j in range(nr):
                    d = acc[qi, j]
                    if d < b1:
                        if d < b0:
                            b1 = b0
                            b0 = d
                        else:
                            b1 = d
                best[qi, 0] = b0
                best[qi, 1] = b1
        for qi in range(nq):
            for i in range(k):
                out[q0 + qi, i] = best[qi, i]


def _nearest_l1_clipped(query: np.ndarray, reference_t: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` (1 or 2) smallest ``sum(min(|q - r|, 1))`` per query row, ascending.

    Exact: a float32 pass (twice the SIMD lanes of float64) screens the reference and keeps,
    per query row, every reference row whose float32 sum lies within a proven rounding margin
    of the running ``k``-th smallest; those candidates are then re-summed in float64, in the
    same order and with the same operations as the float64 kernel, so the result is
    bit-identical to a float64 scan. A query row with more candidates than the buffer holds
    (many ties inside the final margin) is re-scanned in float64.

    Args:
        query: ``(query rows, features)`` float64.
        reference_t: ``(features, reference rows)`` float64, C-contiguous.
        k: 1 or 2 (at most the number of reference rows).
    """
    out = np.empty((query.shape[0], k))
    if query.shape[0] == 0:
        return out
    query = np.ascontiguousarray(query)
    n_features = query.shape[1]
    if (
        n_features < _SCREEN_MIN_FEATURES
        or query.shape[0] * reference_t.shape[1] * n_features < _SCREEN_MIN_WORK
        or max(np.abs(query).max(), np.abs(reference_t).max()) >= 2**24
    ):
        _nearest_l1_clipped_kernel(query, reference_t, k, out)
        return out
    query32 = query.astype(np.float32)
    reference32_t = reference_t.astype(np.float32)
    margin = np.float32(_screen_margin(n_features))
    candidates = np.empty((query.shape[0], _CANDIDATES), dtype=np.int64)
    n_candidates = np.zeros(query.shape[0], dtype=np.int64)
    dropped = np.full(query.shape[0], np.float32(n_features + 1))  # no candidate lost
    kth = np.empty(query.shape[0], dtype=np.float32)
    # Features in decreasing mean distance (estimated on random pairs), so that partial sums
    # over the first half grow fast and prune most reference rows before the second half.
    order = _screen_order(query32, reference32_t)
    split = n_features if n_features < _PRUNE_MIN_FEATURES else int(n_features * _PRUNE_SHARE)
    _screen_kernel(
        np.ascontiguousarray(query32[:, order]),
        np.ascontiguousarray(reference32_t[order]),
        k,
        margin,
        split,
        candidates,
        n_candidates,
        dropped,
        kth,
    )
    _recheck_kernel(query, reference_t, k, candidates, n_candidates, out)
    # A row lost from a full buffer could still qualify when it lies within the final margin.
    overflow = np.flatnonzero(dropped <= kth + margin)
    if overflow.size:
        rescanned = np.empty((overflow.size, k))
        _nearest_l1_clipped_kernel(np.ascontiguousarray(query[overflow]), reference_t, k, rescanned)
        out[overflow] = rescanned
    return out


_SCREEN_MIN_FEATURES = 4  # below, the float64 kernel alone (the screen gains little)
# Below this many row-pair features the float64 kernel alone is as fast (measured, 2 cores:
# 2,000 x 2,000 x 50 took 0.031 s screened vs 0.026 s; 5,000 x 5,000 x 50 0.097 vs 0.106 s).
_SCREEN_MIN_WORK = 1_000_000_000
_PRUNE_MIN_FEATURES = 16  # from this many features on, the screen prunes on half of them
_PRUNE_SHARE = 0.55  # measured best of 0.35-1.0 on the 50-column bench table
_CANDIDATES = 32  # float32 candidates kept per query row before falling back to float64
_UNIT = 2.0**-24  # float32 unit roundoff


def _screen_order(query: np.ndarray, reference_t: np.ndarray, pairs: int = 2048) -> np.ndarray:
    """Feature order by decreasing mean clipped distance over seeded random row pairs."""
    rng = np.random.default_rng(0)
    q = query[rng.integers(0, query.shape[0], pairs)]
    r = reference_t[:, rng.integers(0, reference_t.shape[1], pairs)].T
    return np.argsort(-np.minimum(np.abs(q - r), 1).mean(axis=0), kind="stable")


def _screen_margin(n_features: int) -> float:
    """Twice a bound on ``|float32 sum - exact sum|`` for one row pair, with 2x slack.

    Every feature value lies in ``[-2**24, 2**24]`` but only values in ``[-1, 8]`` (scaled
    numerics, the missing sentinel) round; a clipped per-feature distance then errs by at
    most ``(8 + 8 + 9) u`` (``u = 2**-24``; clipping at 1 does not add error), and summing
    ``F`` terms of at most 1 in any order adds at most ``(F - 1) u F``. A row whose exact
    distance is at most the exact ``k``-th smallest has a float32 sum within twice that
    bound of the float32 ``k``-th smallest.
    """
    bound = 25 * _UNIT * n_features + (n_features - 1) * _UNIT * n_features
    return 2 * 2 * bound


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def _screen_kernel(
    query, reference_t, k, margin, split, candidates, n_candidates, dropped, kth
):  # pragma: no cover
    n_query, n_features = query.shape
    n_reference = reference_t.shape[1]
    n_tiles = (n_query + _SCREEN_QUERY_TILE - 1) // _SCREEN_QUERY_TILE
    one = np.float32(1.0)
    capacity = candidates.shape[1]
    for tile in numba.prange(n_tiles):
        q0 = tile * _SCREEN_QUERY_TILE
        nq = min(_SCREEN_QUERY_TILE, n_query - q0)
        acc = np.empty((_SCREEN_QUERY_TILE, _SCREEN_TILE), dtype=np.float32)
        kept_distance = np.empty((_SCREEN_QUERY_TILE, capacity), dtype=np.float32)
        # Finite "infinity" (fastmath assumes no inf): every sum is at most n_features.
        best = np.full((_SCREEN_QUERY_TILE, 2), np.float32(n_features + 1))
        survivor = np.empty(_SCREEN_TILE, dtype=np.int64)
        total = np.empty(_SCREEN_TILE, dtype=np.float32)
        for r0 in range(0, n_reference, _SCREEN_TILE):
            nr = min(_SCREEN_TILE, n_reference - r0)
            acc[:, :nr] = np.float32(0.0)
            for f in range(split):
                row = reference_t[f, r0 : r0 + nr]
                for qi in range(nq):
                    v = query[q0 + qi, f]
                    a = acc[qi]
                    for j in range(nr):
                        d = v - row[j]
                        d = d if d >= 0 else -d
                        a[j] += d if d < one else one
            for qi in range(nq):
                q = q0 + qi
                n = n_candidates[q]
                distance = kept_distance[qi]
                b0 = best[qi, 0]
                b1 = best[qi, 1]
                bound = (b0 if k == 1 else b1) + margin
                a = acc[qi]
                # Rows whose partial sum over the first `split` features already exceeds the
                # bound cannot qualify (the remaining terms are >= 0; float addition of
                # non-negative terms never decreases a sum): select the others in blocks,
                # skipping blocks whose smallest partial sum is too large.
                m = 0
                for b in range(0, nr, 32):
                    e = min(nr, b + 32)
                    lowest = a[b]
                    for j in range(b + 1, e):  # vectorised
                        lowest = min(lowest, a[j])
                    if lowest > bound:
                        continue
                    for j in range(b, e):
                        survivor[m] = j
                        m += a[j] <= bound
                if m == 0:
                    continue
                for t in range(m):
                    total[t] = a[survivor[t]]
                for f in range(split, n_features):  # finish the survivors' sums
                    v = query[q, f]
                    row = reference_t[f, r0 : r0 + nr]
                    for t in range(m):
                        d = v - row[survivor[t]]
                        d = d if d >= 0 else -d
                        total[t] += d if d < one else one
                for t in range(m):
                    d = total[t]
                    j = survivor[t]
                    if d <= bound:
                        if d < b1:
                            if d < b0:
                                b1 = b0
                                b0 = d
                            else:
                                b1 = d
                            bound = (b0 if k == 1 else b1) + margin
                        if n == capacity:  # drop candidates the tighter bound excludes
                            kept = 0
                            for u in range(n):
                                if distance[u] <= bound:
                                    distance[kept] = distance[u]
                                    candidates[q, kept] = candidates[q, u]
                                    kept += 1
                            n = kept
                            if n == capacity:  # full of near-ties: remember the smallest lost
                                dropped[q] = min(dropped[q], d)
                                continue
                        distance[n] = d
                        candidates[q, n] = r0 + j
                        n += 1
                n_candidates[q] = n
                best[qi, 0] = b0
                best[qi, 1] = b1
        for qi in range(nq):
            kth[q0 + qi] = best[qi, 0] if k == 1 else best[qi, 1]


@numba.njit(parallel=True, cache=True, nogil=True)
def _recheck_kernel(query, reference_t, k, candidates, n_candidates, out):  # pragma: no cover
    n_query, n_features = query.shape
    for q in numba.prange(n_query):
        n = n_candidates[q]
        b0 = np.inf
        b1 = np.inf
        for t in range(n):
            r = candidates[q, t]
            d = 0.0
            for f in range(n_features):
                e = abs(query[q, f] - reference_t[f, r])
                d += e if e < 1.0 else 1.0
            if d < b1:
                if d < b0:
                    b1 = b0
                    b0 = d
                else:
                    b1 = d
        out[q, 0] = b0
        if k == 2:
            out[q, 1] = b1


# ---------------------------------------------------------------------- random baseline


def _random_rows(
    frame: pd.DataFrame,
    reference: _Rows,
    columns: list[str],
    kinds: dict[str, Kind],
    n_rows: int,
    rng: np.random.Generator,
) -> _Rows:
    """Uniformly random rows within the reference's ranges and categories (SDMetrics)."""
    continuous = [c for c in columns if kinds[c] != "categorical"]
    numeric = np.empty((n_rows, reference.numeric.shape[1]))
    for j, name in enumerate(continuous):
        values = reference.numeric[:, j]
        present = values[~np.isnan(values)]
        if present.size == 0:
            numeric[:, j] = np.nan
            continue
        lo, hi = present.min(), present.max()
        if kinds[name] == "numeric" and pd.api.types.is_integer_dtype(frame[name].dtype):
            # The bounds went through float64: clip them back into int64 (a BIGINT near 2**63
            # rounds up past its maximum).
            bounds = np.iinfo(np.int64)
            low, high = (min(max(int(v), bounds.min), bounds.max) for v in (lo, hi))
            numeric[:, j] = rng.integers(low, high, size=n_rows, endpoint=True)
        else:
            numeric[:, j] = rng.uniform(lo, hi, size=n_rows)
        numeric[rng.random(n_rows) < np.isnan(values).mean(), j] = np.nan
    categorical = []
    for codes in reference.categorical:
        missing = codes < 0
        observed = pd.unique(codes[~missing])  # in order of first appearance
        if observed.size == 0:
            categorical.append(np.full(n_rows, -1, dtype=np.int64))
            continue
        drawn = observed[rng.integers(0, observed.size, size=n_rows)]
        drawn[rng.random(n_rows) < missing.mean()] = -1
        categorical.append(drawn)
    return _Rows(n_rows, numeric, categorical)
