"""Distance-based privacy checks for synthetic tables.

Distance between two rows (the SDMetrics ``calculate_dcr`` definition): the mean over the
listed columns of a per-column distance in ``[0, 1]``:

* numeric and datetime: ``min(|a - b| / range, 1)``, where ``range`` is ``max - min`` of the
  reference table the distance is measured against (train or holdout); when that range is 0,
  the distance is 0 for equal values and 1 otherwise;
* categorical and boolean: 0 when equal, 1 otherwise (missing is a category of its own);
* a missing against a present value is 1, two missing values are 0.

Nearest neighbours are exact. Rows are mapped to an L1 embedding in which the Manhattan
distance equals the sum of the per-column distances: a present numeric value, range-normalised
to ``v``, becomes the two features ``(v/2, -v/2)`` and a missing one ``(1, 0)``, so
``|v - w|`` separates two present values and exactly 1 separates missing from present; a
categorical value becomes its one-hot vector times 0.5 (missing is a category, all categories
unseen in the reference share one slot). scikit-learn's ``NearestNeighbors`` (Manhattan
metric; a k-d tree for narrow embeddings, chunked brute force for wide ones) searches that
embedding. The embedding cannot express the clipping at 1, so the few query rows holding a
value outside the reference range are re-scored exactly by a blocked brute-force pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from synth_platform.lib.evaluation._columns import (
    Kind,
    as_float,
    as_object,
    column_kinds,
    datetime_ns,
    factorize_joint,
    ordered_columns,
    require_columns,
)

__all__ = ["PrivacyReport", "evaluate_privacy", "find_pii_leaks"]

_TREE_MAX_FEATURES = 16  # wider embeddings are searched by brute force
_BLOCK_ELEMENTS = 1 << 22  # (query rows x reference rows x columns) per exact brute-force block
_DECIMALS = 12  # distances are rounded so that ties are exact


@dataclass(frozen=True)
class PrivacyReport:
    """Privacy of a synthetic table relative to the train and holdout tables.

    Attributes:
        exact_copies_train: Synthetic rows (all of them, with multiplicity) equal in every
            listed column to some train row.
        exact_copies_holdout: The same against the holdout rows.
        dcr_share: Share of evaluated synthetic rows closer to train than to holdout, a tie
            counting 0.5. About 0.5 for a generator that does not memorise its train rows;
            near 1 for one that copies them.
        dcr_train: Per evaluated synthetic row, the distance to its closest train row.
        dcr_holdout: Per evaluated synthetic row, the distance to its closest holdout row.
        nndr_median: Median over evaluated synthetic rows of the ratio of the distances to the
            nearest and second-nearest train rows (0 when both are 0).
        baseline_protection: SDMetrics' ``DCRBaselineProtection`` score: the median of
            ``dcr_train`` over the median distance to train of uniformly random rows, capped
            at 1; ``None`` when the random rows' median distance is 0 or it was not requested.
        n_synthetic_evaluated: Number of synthetic rows behind the distance figures.
        n_reference: Number of train rows, and of holdout rows, searched.
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


def evaluate_privacy(
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    numeric: Sequence[str],
    datetime: Sequence[str],
    categorical: Sequence[str],
    max_rows: int = 20_000,
    seed: int = 0,
    baseline: bool = True,
) -> PrivacyReport:
    """Measure how close synthetic rows sit to the train rows compared with holdout rows.

    The distance is the one in the module docstring (SDMetrics' ``calculate_dcr``), with the
    numeric ranges taken from the reference table searched, as SDMetrics does.

    Subsampling, all seeded by ``seed``: at most ``max_rows`` synthetic rows are evaluated;
    train and holdout are both sampled down to ``n_reference = min(len(train), len(holdout),
    max_rows)`` rows so that neither side wins by being larger. Exact copies are counted on
    all rows of every table.

    Differences from SDMetrics' ``DCROverfittingProtection``: SDMetrics counts a tie as closer
    to holdout and does not equalise the reference sizes; ``dcr_share`` counts a tie as 0.5.
    The random baseline draws each numeric column uniformly between its train minimum and
    maximum (integers for integer dtypes), each datetime uniformly in its range and each
    categorical uniformly among its observed values, with the train share of missing cells,
    as SDMetrics' ``DCRBaselineProtection`` does.

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

    synthetic_hashes = _row_hashes(synthetic, columns, kinds)
    exact_train = int(np.isin(synthetic_hashes, _row_hashes(train, columns, kinds)).sum())
    exact_holdout = int(np.isin(synthetic_hashes, _row_hashes(holdout, columns, kinds)).sum())

    rng = np.random.default_rng(seed)
    n_reference = min(len(train), len(holdout), max_rows)
    synthetic_rows = _raw(synthetic, columns, kinds, _subsample(len(synthetic), max_rows, rng))
    train_rows = _raw(train, columns, kinds, _subsample(len(train), n_reference, rng))
    holdout_rows = _raw(holdout, columns, kinds, _subsample(len(holdout), n_reference, rng))

    train_index = _ReferenceIndex(train_rows)
    to_train = train_index.nearest(synthetic_rows, k=min(2, n_reference))
    dcr_train = to_train[:, 0]
    dcr_holdout = _ReferenceIndex(holdout_rows).nearest(synthetic_rows, k=1)[:, 0]
    closer = np.where(dcr_train < dcr_holdout, 1.0, np.where(dcr_train == dcr_holdout, 0.5, 0.0))

    if to_train.shape[1] == 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(to_train[:, 1] > 0, to_train[:, 0] / to_train[:, 1], 0.0)
        nndr_median = float(np.median(ratio))
    else:
        nndr_median = math.nan

    protection: float | None = None
    if baseline:
        random_rows = _random_rows(train, train_rows, kinds, synthetic_rows.n_rows, rng)
        random_median = float(np.median(train_index.nearest(random_rows, k=1)[:, 0]))
        if random_median > 0:
            protection = min(float(np.median(dcr_train)) / random_median, 1.0)

    return PrivacyReport(
        exact_copies_train=exact_train,
        exact_copies_holdout=exact_holdout,
        dcr_share=float(closer.mean()),
        dcr_train=dcr_train,
        dcr_holdout=dcr_holdout,
        nndr_median=nndr_median,
        baseline_protection=protection,
        n_synthetic_evaluated=synthetic_rows.n_rows,
        n_reference=n_reference,
    )


def find_pii_leaks(*, real_values: Iterable[str], synthetic: pd.DataFrame) -> dict[str, int]:
    """Count synthetic cells that reproduce a real PII value verbatim.

    Args:
        real_values: The real PII values (names, e-mails, phone numbers...). Non-string
            entries are ignored; matching is exact (no case or whitespace folding).
        synthetic: The synthetic table.

    Returns:
        For every string-like column of ``synthetic`` (object, string or category dtype), in
        column order, the number of its cells whose value is one of ``real_values``.
    """
    values = list({v for v in real_values if isinstance(v, str)})
    leaks: dict[str, int] = {}
    for name in synthetic.columns:
        column = synthetic[name]
        dtype = column.dtype
        if (
            dtype == object
            or isinstance(dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(dtype)
        ):
            leaks[str(name)] = int(column.isin(values).sum()) if values else 0
    return leaks


# ------------------------------------------------------------------------ exact copies


def _row_hashes(frame: pd.DataFrame, columns: list[str], kinds: dict[str, Kind]) -> np.ndarray:
    """64-bit hash of each row over a dtype-independent form of the listed columns."""
    canonical: dict[str, object] = {}
    for name in columns:
        kind = kinds[name]
        if kind == "datetime":
            canonical[name] = datetime_ns(frame[name])
        elif kind == "numeric":
            canonical[name] = as_float(frame[name], kind) + 0.0  # folds -0.0 into 0.0
        else:
            values = as_object(frame[name])
            missing = pd.isna(values)
            text = values.astype(str)
            canonical[name] = np.where(missing, None, text).astype(object)
    table = pd.DataFrame(canonical, index=pd.RangeIndex(len(frame)))
    return pd.util.hash_pandas_object(table, index=False).to_numpy()


# ----------------------------------------------------------------------------- distances


@dataclass(frozen=True)
class _Rows:
    """Rows of one table in raw form: floats (datetimes in ns) and categorical objects."""

    n_rows: int
    numeric: np.ndarray  # (rows, numeric columns) float64, NaN missing
    categorical: list[np.ndarray]  # object arrays, one per categorical column

    @property
    def n_columns(self) -> int:
        return self.numeric.shape[1] + len(self.categorical)


def _subsample(n_rows: int, size: int, rng: np.random.Generator) -> np.ndarray:
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, size=size, replace=False))


def _raw(
    frame: pd.DataFrame, columns: list[str], kinds: dict[str, Kind], rows: np.ndarray
) -> _Rows:
    continuous = [c for c in columns if kinds[c] != "categorical"]
    numeric = np.empty((rows.size, len(continuous)), dtype=np.float64)
    for j, name in enumerate(continuous):
        numeric[:, j] = as_float(frame[name], kinds[name])[rows]
    categorical = [as_object(frame[c])[rows] for c in columns if kinds[c] == "categorical"]
    return _Rows(rows.size, numeric, categorical)


class _ReferenceIndex:
    """Exact nearest-neighbour search in the mixed-type distance against one reference table."""

    def __init__(self, reference: _Rows) -> None:
        self._reference = reference
        numeric = reference.numeric
        present = ~np.isnan(numeric)
        lo = np.where(present, numeric, np.inf).min(axis=0, initial=np.inf)
        hi = np.where(present, numeric, -np.inf).max(axis=0, initial=-np.inf)
        self._lo = np.where(np.isfinite(lo), lo, 0.0)
        span = hi - lo
        self._span = np.where(np.isfinite(span), span, np.nan)  # NaN: column all missing
        self._reference_scaled = self._scale(numeric)
        self._reference_codes = [
            factorize_joint(values)[0][0] for values in reference.categorical
        ]
        self._uniques = [
            pd.unique(values[~pd.isna(values)]) if values.size else values
            for values in reference.categorical
        ]
        self._n_codes = [
            int(codes.max()) + 1 if codes.size else 0 for codes in self._reference_codes
        ]
        embedded = self._embed(self._reference_scaled, self._reference_codes)
        algorithm = "kd_tree" if embedded.shape[1] <= _TREE_MAX_FEATURES else "brute"
        self._index = NearestNeighbors(metric="manhattan", algorithm=algorithm, n_jobs=-1)
        self._index.fit(embedded)

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

    def _codes(self, query: _Rows) -> list[np.ndarray]:
        """Query categorical codes in the reference's code space; unseen values get a new code."""
        out = []
        for values, n_codes, reference in zip(
            query.categorical, self._n_codes, self._reference.categorical, strict=True
        ):
            (_, codes), _, _ = factorize_joint(reference, values)
            out.append(np.minimum(codes, n_codes))  # codes beyond the reference's are unseen
        return out

    def _embed(self, scaled: np.ndarray, codes: list[np.ndarray]) -> np.ndarray:
        n_rows = scaled.shape[0]
        blocks = []
        if scaled.shape[1]:
            missing = np.isnan(scaled)
            half = np.where(missing, 0.0, scaled / 2.0)
            blocks.append(np.where(missing, 1.0, half))
            blocks.append(-half)
        for column_codes, n_codes in zip(codes, self._n_codes, strict=True):
            one_hot = np.zeros((n_rows, n_codes + 1))
            one_hot[np.arange(n_rows), column_codes] = 0.5
            blocks.append(one_hot)
        return np.hstack(blocks) if blocks else np.zeros((n_rows, 0))

    def nearest(self, query: _Rows, *, k: int) -> np.ndarray:
        """Distances (mean per-column distance) from each query row to its ``k`` nearest."""
        reference = self._reference
        n_columns = reference.n_columns
        scaled = self._scale(query.numeric)
        codes = self._codes(query)
        distances, _ = self._index.kneighbors(self._embed(scaled, codes), n_neighbors=k)
        out_of_range = np.flatnonzero(((scaled < 0) | (scaled > 1)).any(axis=1))
        if out_of_range.size:
            distances[out_of_range] = self._exact(
                scaled[out_of_range], [c[out_of_range] for c in codes], k
            )
        return np.round(distances / n_columns, _DECIMALS)

    def _exact(self, scaled: np.ndarray, codes: list[np.ndarray], k: int) -> np.ndarray:
        """Blocked brute force of the clipped distance, for query rows outside the ranges."""
        reference = self._reference_scaled
        reference_missing = np.isnan(reference)
        n_reference = reference.shape[0]
        per_row = max(1, n_reference * max(1, len(codes) + reference.shape[1]))
        block = max(1, _BLOCK_ELEMENTS // per_row)
        out = np.empty((scaled.shape[0], k))
        for start in range(0, scaled.shape[0], block):
            stop = min(start + block, scaled.shape[0])
            total = np.zeros((stop - start, n_reference))
            for j in range(reference.shape[1]):
                query_values = scaled[start:stop, j, None]
                diff = np.minimum(np.abs(query_values - reference[None, :, j]), 1.0)
                query_missing = np.isnan(query_values)
                one_missing = query_missing ^ reference_missing[None, :, j]
                diff = np.where(one_missing, 1.0, np.where(np.isnan(diff), 0.0, diff))
                total += diff
            for query_codes, reference_codes in zip(codes, self._reference_codes, strict=True):
                total += query_codes[start:stop, None] != reference_codes[None, :]
            nearest = np.partition(total, k - 1, axis=1)[:, :k] if k < n_reference else total
            out[start:stop] = np.sort(nearest, axis=1)[:, :k]
        return out


# ---------------------------------------------------------------------- random baseline


def _random_rows(
    frame: pd.DataFrame,
    reference: _Rows,
    kinds: dict[str, Kind],
    n_rows: int,
    rng: np.random.Generator,
) -> _Rows:
    """Uniformly random rows within the reference's ranges and categories (SDMetrics)."""
    continuous = [c for c in kinds if kinds[c] != "categorical"]
    continuous = sorted(continuous, key=list(frame.columns).index)
    numeric = np.empty((n_rows, reference.numeric.shape[1]))
    for j, name in enumerate(continuous):
        values = reference.numeric[:, j]
        present = values[~np.isnan(values)]
        if present.size == 0:
            numeric[:, j] = np.nan
            continue
        lo, hi = present.min(), present.max()
        if kinds[name] == "numeric" and pd.api.types.is_integer_dtype(frame[name].dtype):
            numeric[:, j] = rng.integers(int(lo), int(hi) + 1, size=n_rows)
        else:
            numeric[:, j] = rng.uniform(lo, hi, size=n_rows)
        numeric[rng.random(n_rows) < np.isnan(values).mean(), j] = np.nan
    categorical = []
    for values in reference.categorical:
        missing = pd.isna(values)
        observed = pd.unique(values[~missing])
        if observed.size == 0:
            categorical.append(np.full(n_rows, None, dtype=object))
            continue
        drawn = observed[rng.integers(0, observed.size, size=n_rows)].astype(object)
        drawn[rng.random(n_rows) < missing.mean()] = None
        categorical.append(drawn)
    return _Rows(n_rows, numeric, categorical)
