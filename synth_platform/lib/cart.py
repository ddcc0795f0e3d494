"""Sequential CART synthesis, in the style of synthpop (Nowok, Raab & Dibben, 2016).

Columns are synthesized one after another. The first is drawn from its training values; every
later column gets a classification or regression tree (scikit-learn) fitted on the columns before
it, and each synthetic row draws its value from the training rows ("donors") that fall in the
same leaf as the synthetic row's already drawn values. This reproduces, without any parametric
assumption, what Gaussian copulas struggle with: zero-inflated and point-mass columns (a donor
is an exact 0), heavy tails, integer counts, rare categories and categorical x categorical or
categorical x numeric dependence (the trees split on them).

Privacy safeguards, as in synthpop:

* **Minimum leaf size** (``min_samples_leaf``): a leaf holds at least that many training rows,
  so a value is always drawn among several donors. The default grows with the table
  (:func:`default_min_leaf`).
* **Smoothing** (synthpop's ``smoothing = "density"``): a donated numeric or datetime value is
  moved by Gaussian noise with the leaf's Silverman bandwidth, so continuous values are not
  replayed. Point masses (values repeated in at least :data:`POINT_MASS_SHARE` of the rows,
  such as the zeros of a zero-inflated amount) and the values of discrete integer columns are
  donated exactly: they are shared by many rows and carry no individual signal.
* **No rare training row is replayed**: a sampled row equal on every modelled column to a
  training row whose combination of values fewer than 5 training rows share
  (:data:`synth_platform.lib.evaluation.privacy.COMMON_ROWS`) is drawn again (up to
  :data:`REDRAWS` rounds), as synthpop's ``sdc`` removes replicated uniques; the privacy gate
  counts such copies on its own. Combinations that many rows share (zero amount, zero fees,
  grade A: two thirds of a zero-inflated table) are drawn like any other: redrawing them
  took that table's zero share from 0.69 to 0.11.
* Values never leave the training range (SDV's ``enforce_min_max_values``; smoothing noise is
  reflected at the bounds rather than clipped onto the real extremes), integer columns stay
  integers, and datetimes keep their resolution (dates stay dates).

Missing cells are modelled: a numeric column with nulls first draws "missing or not" from its
own tree, and a missing categorical value is a category of its own.

The fitted model quacks like an SDV single-table synthesizer (``sample(num_rows)`` returns
``{table: frame}``, ``reset_sampling``, ``_set_random_state``, ``save``), so the lifecycle, the
MLflow model and the group re-keying use it unchanged.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: A value held by at least this share of a column's non-missing training rows is a point
#: mass: donated exactly, never smoothed.
POINT_MASS_SHARE = 0.01
#: Integer columns with at most this many distinct values are discrete: never smoothed.
DISCRETE_LEVELS = 50

#: A categorical column's tree tells apart at most this many categories: its most frequent
#: ones, the rest as one class. Donors are still the real values of the leaf, so every
#: category can be drawn; only the split search stops growing with the number of categories.
#: scikit-learn's classifier costs O(classes) per candidate split and stores a (nodes x
#: classes) array: with a category per few rows (up to half the rows pass `derive_sdtypes`)
#: both grow as rows squared (measured: 14,662 categories in 40k rows, 349 MB and, visited
#: after numeric columns, 65 s; twice the rows of 20k took 4x).
MAX_TREE_CLASSES = 256

#: A tree splits on at most this many of the columns visited before its own (the default of
#: ``max_predictors``): the ones a screening tree on a sample of the rows finds most useful.
#: A tree's cost grows with its predictors, so without a limit a table's fit grows as its
#: columns squared (measured: 100 columns x 80k rows, 470 s on one core).
MAX_PREDICTORS = 30
#: Rows of the sample the screening tree is fitted on.
SCREEN_ROWS = 5_000

#: Rounds of redrawing rows that equal a training row before giving up (the privacy gate then
#: counts what is left).
REDRAWS = 20

_DAY_NS = 86_400 * 10**9
_SECOND_NS = 10**9


#: Most threads a fit starts by default: each holds a copy of its column's predictors (rows x
#: up to ``max_predictors`` float32), and a pod with a CPU request but no limit sees every core.
MAX_DEFAULT_THREADS = 8


def _default_threads() -> int:
    """Threads of a fit by default: ``SYNTH_CART_THREADS`` when set, else the cores this process
    may use (affinity and a container's CPU limit: joblib's count), at most
    :data:`MAX_DEFAULT_THREADS`."""
    from joblib import cpu_count

    configured = os.environ.get("SYNTH_CART_THREADS", "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise ValueError(f"SYNTH_CART_THREADS must be a whole number >= 1, not {configured!r}")
        return int(configured)
    return max(1, min(int(cpu_count()), MAX_DEFAULT_THREADS))


def default_min_leaf(rows: int) -> int:
    """Default minimum leaf size: 20 rows (synthpop's ``minbucket`` is 5; measured on the demo
    bank, 20 brings the DCR share from 0.54-0.56 to 0.51-0.54 at the same fidelity, see
    README), growing as the square root of the rows / 20 above 160,000 rows (50 at 1M), so
    that trees stay small on large tables."""
    return max(20, int(math.sqrt(max(rows, 0)) / 20))


@dataclass
class _Column:
    """How one column is encoded and synthesized."""

    name: str
    kind: str  # "numerical" | "datetime" | "categorical" | "id"
    levels: list[Any] = field(default_factory=list)  # categorical: code -> value (-1 missing)
    integer: bool = False
    resolution: int = 0  # datetime: ns of the coarsest unit all values fall on (0: none)
    low: float = math.nan
    high: float = math.nan
    point_masses: np.ndarray = field(default_factory=lambda: np.empty(0))
    smooth: bool = False
    dtype: Any = None
    tz: Any = None


@dataclass
class _Donors:
    """A fitted tree and, per leaf, the training values it donates from."""

    tree: Any  # fitted DecisionTree*, or None: a single leaf (no predictors)
    leaf_of: np.ndarray  # leaf id -> dense leaf index
    starts: np.ndarray  # dense leaf -> offset into `values`
    counts: np.ndarray  # dense leaf -> number of donors
    values: np.ndarray  # donor values grouped by leaf
    bandwidth: np.ndarray  # dense leaf -> smoothing bandwidth (0: none)
    features: np.ndarray | None = None  # the predictor columns the tree splits on (None: all)

    def draw(
        self, x: np.ndarray | None, rng: np.random.Generator, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Donor values for ``n`` synthetic rows with predictors ``x``, and their leaves."""
        if self.tree is None:
            leaves = np.zeros(n, dtype=np.int64)
        else:
            leaves = self.leaf_of[
                self.tree.apply(x if self.features is None else x[:, self.features])
            ]
        picks = self.starts[leaves] + (rng.random(n) * self.counts[leaves]).astype(np.int64)
        return self.values[picks], leaves


def _silverman(values: np.ndarray) -> float:
    """R's ``bw.nrd0`` (what synthpop's density smoothing uses)."""
    n = len(values)
    if n < 2:
        return 0.0
    sd = float(np.std(values, ddof=1))
    q75, q25 = np.percentile(values, [75, 25])
    spread = min(sd, float(q75 - q25) / 1.34) or sd or abs(float(values[0])) or 1.0
    return 0.9 * spread * n ** (-0.2)


def _donors(
    fitted: tuple[Any, np.ndarray | None, np.ndarray | None],
    y: np.ndarray,
    *,
    smooth: np.ndarray | None,
) -> _Donors:
    """Group the training targets ``y`` by the leaf their row falls in; ``fitted`` is what
    :meth:`CartSynthesizer._tree` returns (tree, the predictor columns it uses, those columns)."""
    tree, features, x = fitted
    if tree is None:
        raw = np.zeros(len(y), dtype=np.int64)
        leaf_of = np.zeros(1, dtype=np.int64)
    else:
        raw = tree.apply(x)
        leaf_of = np.full(tree.tree_.node_count, -1, dtype=np.int64)
        used = np.unique(raw)
        leaf_of[used] = np.arange(len(used))
    dense = leaf_of[raw]
    order = np.argsort(dense, kind="stable")
    counts = np.bincount(dense, minlength=int(dense.max()) + 1 if len(dense) else 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    values = y[order]
    bandwidth = np.zeros(len(counts))
    if smooth is not None:
        smoothable = smooth[order]
        for leaf, (s, c) in enumerate(zip(starts, counts, strict=True)):
            v = values[s : s + c][smoothable[s : s + c]]
            bandwidth[leaf] = _silverman(v)
    return _Donors(tree, leaf_of, starts, counts, values, bandwidth, features)


def _in_sorted(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_unique)`` by binary search: O(n log m) per call, where np.isin
    sorts both arrays again (a sampler checks every batch against all training rows)."""
    if not len(sorted_unique):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_unique, values), len(sorted_unique) - 1)
    return sorted_unique[at] == values


class CartSynthesizer:
    """Sequential CART synthesizer over one table (see the module docstring).

    Args:
        columns: Column name -> SDV sdtype (``numerical``, ``datetime``, ``categorical``,
            ``boolean`` or ``id``), in output order.
        table: Table name (the key of the frame :meth:`sample` returns).
        primary_key: The key column (generated unique, never modelled).
        min_samples_leaf: Minimum training rows per leaf (default :func:`default_min_leaf`).
        smoothing: Smooth donated continuous values (default on).
        visit_order: Order in which columns are synthesized (default: categorical columns by
            increasing number of levels, then numeric and datetime columns in table order).
        seed: Seed of the trees' tie-breaking.
        max_predictors: Columns a tree may split on, chosen among those visited before its own
            (default :data:`MAX_PREDICTORS`; 0 or None: all of them).
        n_jobs: Threads that fit columns' trees at once (default: ``SYNTH_CART_THREADS``, else
            the cores this process may use, container CPU limits included, at most
            :data:`MAX_DEFAULT_THREADS`). The fitted model does not depend on it.
    """

    def __init__(
        self,
        columns: dict[str, str],
        *,
        table: str,
        primary_key: str | None = None,
        min_samples_leaf: int | None = None,
        smoothing: bool = True,
        visit_order: list[str] | None = None,
        seed: int = 0,
        max_predictors: int | None = MAX_PREDICTORS,
        n_jobs: int | None = None,
    ) -> None:
        self.sdtypes = dict(columns)
        self.table = table
        self.primary_key = primary_key
        self.min_samples_leaf = min_samples_leaf
        self.smoothing = smoothing
        self.visit_order = list(visit_order) if visit_order else None
        self.seed = seed
        if n_jobs is not None and n_jobs < 1:
            raise ValueError(f"n_jobs must be at least 1 (or None: the default), not {n_jobs}")
        self.max_predictors = max_predictors
        self.n_jobs = n_jobs
        self._columns: dict[str, _Column] = {}
        self._order: list[str] = []
        self._null_models: dict[str, _Donors] = {}
        self._value_models: dict[str, _Donors] = {}
        self._fitted = False
        self._rng = np.random.default_rng(seed)
        self._sampled = 0

    # ------------------------------------------------------------------ encoding

    def _profile(self, name: str, s: pd.Series) -> _Column:
        kind = self.sdtypes[name]
        if kind in ("categorical", "boolean"):
            counts = s.value_counts(dropna=True)
            levels = list(counts.index)
            return _Column(name, "categorical", levels=levels, dtype=s.dtype)
        if kind == "id":
            return _Column(name, "id", dtype=s.dtype)
        if kind == "datetime":
            col = _Column(name, "datetime", dtype=s.dtype)
            if isinstance(s.dtype, pd.DatetimeTZDtype):
                col.tz = s.dtype.tz
            values = self._numbers(col, s)
            finite = values[~np.isnan(values)]
            for unit in (_DAY_NS, _SECOND_NS):
                if len(finite) and np.all(np.mod(finite, unit) == 0):
                    col.resolution = unit
                    break
        else:
            col = _Column(name, "numerical", dtype=s.dtype)
            values = self._numbers(col, s)
            finite = values[~np.isnan(values)]
            col.integer = bool(len(finite)) and bool(np.all(np.mod(finite, 1) == 0))
        if len(finite):
            col.low, col.high = float(finite.min()), float(finite.max())
            uniq, counts = np.unique(finite, return_counts=True)
            col.point_masses = uniq[counts >= max(2, POINT_MASS_SHARE * len(finite))]
            discrete = col.integer and len(uniq) <= DISCRETE_LEVELS
            col.smooth = self.smoothing and not discrete and len(uniq) > len(col.point_masses)
        return col

    @staticmethod
    def _numbers(col: _Column, s: pd.Series) -> np.ndarray:
        if col.kind == "datetime":
            t = pd.to_datetime(s)
            if isinstance(t.dtype, pd.DatetimeTZDtype):
                t = t.dt.tz_convert("UTC").dt.tz_localize(None)
            ns = t.astype("datetime64[ns]").to_numpy().astype("int64").astype("float64")
            ns[t.isna().to_numpy()] = np.nan
            return ns
        return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)

    def _encode(self, col: _Column, s: pd.Series) -> np.ndarray:
        """A column as a float predictor: numbers as they are, categories as codes (by
        decreasing frequency; missing is -1)."""
        if col.kind == "categorical":
            index = {v: i for i, v in enumerate(col.levels)}
            return s.map(index).to_numpy(dtype="float64", na_value=-1.0)
        return self._numbers(col, s)

    # ------------------------------------------------------------------ fitting

    def _default_order(self) -> list[str]:
        cats = [c for c, col in self._columns.items() if col.kind == "categorical"]
        cats.sort(key=lambda c: len(self._columns[c].levels))
        rest = [c for c, col in self._columns.items() if col.kind in ("numerical", "datetime")]
        return cats + rest

    def fit(
        self,
        data: pd.DataFrame | dict[str, pd.DataFrame],
        *,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """Fit the trees on the training rows (a frame, or ``{table: frame}`` as SDV takes);
        ``progress`` receives a line (columns fitted, percent, rate) every few seconds."""
        from synth_platform.lib.progress import Meter

        frame = data[self.table] if isinstance(data, dict) else data
        self._fitted = False  # a refit, failed or not, keeps nothing of the previous fit
        self._null_models, self._value_models = {}, {}
        missing = [c for c in self.sdtypes if c not in frame.columns]
        if missing:
            raise ValueError(f"columns {missing} are not in the training data")
        self._columns = {c: self._profile(c, frame[c]) for c in self.sdtypes}
        order = self.visit_order or self._default_order()
        unknown = [
            c for c in order if self._columns.get(c) is None or self._columns[c].kind == "id"
        ]
        if unknown:
            raise ValueError(f"visit_order names columns that are not modelled: {unknown}")
        modelled = [c for c, col in self._columns.items() if col.kind != "id"]
        self._order = order + [c for c in modelled if c not in order]
        n = len(frame)
        leaf = self.min_samples_leaf or default_min_leaf(n)
        encoded = {c: self._encode(self._columns[c], frame[c]) for c in self._order}
        # The predictors of column i are the columns before it: one float32 matrix (what the
        # trees convert to anyway), in Fortran order so that its first i columns are a view.
        predictors = np.empty((n, len(self._order)), dtype=np.float32, order="F")
        for i, c in enumerate(self._order):
            predictors[:, i] = encoded[c]
        meter = Meter(
            progress, stage=f"fit {self.table} ({n:,} rows)", total=len(self._order), unit="columns"
        )
        # Each column's trees depend on the training data only, not on other trees: they are
        # fitted in threads (scikit-learn builds a tree without the GIL), the widest first.
        workers = max(1, min(self.n_jobs or _default_threads(), len(self._order)))
        with ThreadPoolExecutor(workers, thread_name_prefix="cart-fit") as pool:
            futures = [
                pool.submit(self._fit_column, name, predictors[:, :i] if i else None,
                            encoded[name], leaf)
                for i, name in reversed(list(enumerate(self._order)))
            ]  # fmt: skip
            fitted = {}
            try:
                for done, future in enumerate(as_completed(futures), start=1):
                    name, null_model, value_model = future.result()
                    fitted[name] = (null_model, value_model)
                    meter.set(done)
            except BaseException:  # an error or an interrupt: start no further column
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        for name in self._order:  # in visit order, whatever order the threads finished in
            null_model, value_model = fitted[name]
            if null_model is not None:
                self._null_models[name] = null_model
            if value_model is not None:
                self._value_models[name] = value_model
        meter.set(len(self._order))
        self._key_template = self._key_format(frame)
        from synth_platform.lib.evaluation.privacy import COMMON_ROWS

        hashes, counts = np.unique(self._row_hashes(encoded), return_counts=True)
        self._train_hashes = hashes[counts < COMMON_ROWS]  # sorted: np.unique sorts
        self._fitted = True
        self.reset_sampling()

    def _fit_column(
        self, name: str, x: np.ndarray | None, y: np.ndarray, leaf: int
    ) -> tuple[str, _Donors | None, _Donors | None]:
        """The trees of one column on its predictors ``x``: (name, null model, value model)."""
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

        col = self._columns[name]
        if col.kind == "categorical":
            # Codes run by decreasing frequency (missing is -1): keep the frequent ones.
            classes = np.minimum(y.astype(np.int64), MAX_TREE_CLASSES - 1)
            fitted = self._tree(DecisionTreeClassifier, x, classes, leaf)
            return name, None, _donors(fitted, y, smooth=None)
        null_model = None
        isnull = np.isnan(y)
        if isnull.any():
            fitted = self._tree(DecisionTreeClassifier, x, isnull.astype(np.int64), leaf)
            null_model = _donors(fitted, isnull.astype(float), smooth=None)
        keep = ~isnull
        if not keep.any():
            return name, null_model, None
        yk = y[keep]
        smooth = ~np.isin(yk, col.point_masses) if col.smooth else None
        fitted = self._tree(DecisionTreeRegressor, x, yk, leaf, rows=np.flatnonzero(keep))
        return name, null_model, _donors(fitted, yk, smooth=smooth)

    def _row_hashes(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        """A 64-bit hash per row of the modelled columns (as encoded: codes and numbers)."""
        frame = pd.DataFrame({c: encoded[c] for c in self._order})
        if frame.empty or not len(frame.columns):
            return np.empty(0, dtype=np.uint64)
        return pd.util.hash_pandas_object(frame, index=False).to_numpy()

    def _tree(
        self,
        cls: type,
        x: np.ndarray | None,
        y: np.ndarray,
        leaf: int,
        rows: np.ndarray | None = None,
    ) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
        """A tree of ``cls`` predicting ``y`` from ``x`` (its ``rows`` only, when given: one per
        value of ``y``), or None (one leaf: all training values); the predictor columns it
        splits on (None: all of ``x``); and the predictors it was fitted on."""
        if x is None or len(y) < 2 * leaf or np.unique(y).size < 2:
            return None, None, None  # one leaf: its draws need no predictors
        features = None
        if self.max_predictors and x.shape[1] > self.max_predictors:
            features = self._screen(cls, x, y, leaf, rows)
        if features is None:
            xs = x if rows is None else x[rows]
        else:  # only the kept columns are copied, whatever the table's width
            xs = x[:, features] if rows is None else x[np.ix_(rows, features)]
        return cls(min_samples_leaf=leaf, random_state=self.seed).fit(xs, y), features, xs

    def _screen(
        self, cls: type, x: np.ndarray, y: np.ndarray, leaf: int, rows: np.ndarray | None
    ) -> np.ndarray | None:
        """The ``max_predictors`` columns of ``x`` most useful to a tree predicting ``y``: the
        largest impurity decreases of the same kind of tree on at most :data:`SCREEN_ROWS`
        rows (ties go to the columns visited first); None (every column) when that sample
        shows no split, as for a rare class: such a tree is small, so cheap on every column."""
        n = len(y)
        sample = np.arange(n)
        if n > SCREEN_ROWS:
            rng = np.random.default_rng([self.seed, x.shape[1], n])
            sample = np.sort(rng.choice(n, SCREEN_ROWS, replace=False))
        at = sample if rows is None else rows[sample]
        # The full tree's leaf, up to one that still lets the sample split ~200 ways.
        small_leaf = max(1, min(leaf, SCREEN_ROWS // 200))
        screen = cls(min_samples_leaf=small_leaf, random_state=self.seed)
        screen.fit(x[at], y[sample])
        importance = screen.feature_importances_
        if not np.any(importance > 0):
            return None
        best = np.argsort(-importance, kind="stable")[: self.max_predictors]
        return np.sort(best)

    def _key_format(self, frame: pd.DataFrame) -> dict[str, tuple[str, int]]:
        """Per id column: ("int", 0) for integer keys, else ("str", width) for text keys."""
        out = {}
        for name, col in self._columns.items():
            if col.kind != "id":
                continue
            s = frame[name].dropna()
            if pd.api.types.is_integer_dtype(s) or (len(s) and pd.api.types.is_float_dtype(s)):
                out[name] = ("int", 0)
            else:
                width = int(s.astype(str).str.len().max()) if len(s) else 1
                out[name] = ("str", width)
        return out

    # ------------------------------------------------------------------ sampling

    def reset_sampling(self) -> None:
        """Restart the random stream (and the key counter) at the seed."""
        self._set_random_state(self.seed)

    def _set_random_state(self, seed: int) -> None:
        self._rng = np.random.default_rng(int(seed))
        self._sampled = 0

    def sample(self, num_rows: int) -> dict[str, pd.DataFrame]:
        """``num_rows`` synthetic rows, as ``{table: frame}`` (SDV's multi-table shape)."""
        if not self._fitted:
            raise RuntimeError("fit the synthesizer before sampling")
        n = int(num_rows)
        encoded = self._draw(n)
        for _ in range(REDRAWS):
            copies = _in_sorted(self._row_hashes(encoded), self._train_hashes)
            if not copies.any():
                break
            again = self._draw(int(copies.sum()))
            for c in encoded:
                encoded[c][copies] = again[c]
        out = {}
        for name, col in self._columns.items():
            out[name] = self._decode(col, encoded.get(name), n)
        self._sampled += n
        return {self.table: pd.DataFrame(out)}

    def _draw(self, n: int) -> dict[str, np.ndarray]:
        """``n`` rows of the modelled columns, encoded, one column after another."""
        rng = self._rng
        encoded: dict[str, np.ndarray] = {}
        # The columns drawn so far, as the trees take them (float32; the first i are a view).
        predictors = np.empty((n, len(self._order)), dtype=np.float32, order="F")
        for i, name in enumerate(self._order):
            if i:
                predictors[:, i - 1] = encoded[self._order[i - 1]]
            col = self._columns[name]
            x = predictors[:, :i] if i else None
            if col.kind == "categorical":
                encoded[name], _ = self._value_models[name].draw(x, rng, n)
                continue
            y = np.full(n, np.nan)
            isnull = np.zeros(n, dtype=bool)
            if name in self._null_models:
                drawn, _ = self._null_models[name].draw(x, rng, n)
                isnull = drawn > 0.5
            keep = ~isnull
            if name in self._value_models and keep.any():
                model = self._value_models[name]
                xk = None if x is None else x[keep]
                values, leaves = model.draw(xk, rng, int(keep.sum()))
                values = self._smoothed(col, values, model.bandwidth[leaves], rng)
                y[keep] = values
            encoded[name] = y
        return encoded

    def _smoothed(
        self, col: _Column, values: np.ndarray, bandwidth: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        if col.smooth:
            move = ~np.isin(values, col.point_masses) & (bandwidth > 0)
            noise = rng.standard_normal(len(values)) * bandwidth
            values = np.where(move, values + noise, values)
            # Reflect at the training range (a boundary-corrected kernel): clipping would pile
            # the overshoot onto the real minimum and maximum.
            values = np.where(values < col.low, 2 * col.low - values, values)
            values = np.where(values > col.high, 2 * col.high - values, values)
            values = np.clip(values, col.low, col.high)
        if col.integer:
            values = np.round(values)
        if col.resolution:
            values = np.round(values / col.resolution) * col.resolution
            values = np.clip(values, col.low, col.high)
        return values

    def _decode(self, col: _Column, values: np.ndarray | None, n: int) -> pd.Series:
        if col.kind == "id":
            kind, width = self._key_template[col.name]
            numbers = np.arange(self._sampled, self._sampled + n, dtype=np.int64)
            if kind == "int":
                return pd.Series(numbers)
            return pd.Series([f"{k:0{width}d}" for k in numbers], dtype=object)
        if col.kind == "categorical":
            codes = values.astype(np.int64)
            levels = np.array(col.levels + [None], dtype=object)
            return pd.Series(levels[np.where(codes < 0, len(col.levels), codes)], dtype=object)
        if col.kind == "datetime":
            t = pd.Series(pd.to_datetime(values, unit="ns"))
            return t.dt.tz_localize("UTC").dt.tz_convert(col.tz) if col.tz is not None else t
        return pd.Series(values)

    # ------------------------------------------------------------------ persistence

    def save(self, filepath: str) -> None:
        """Pickle the fitted model so that loading it needs NumPy, pandas and scikit-learn
        only (this module travels by value)."""
        import sys

        import cloudpickle

        module = sys.modules[__name__]
        cloudpickle.register_pickle_by_value(module)
        try:
            with open(filepath, "wb") as fh:
                cloudpickle.dump(self, fh)
        finally:
            cloudpickle.unregister_pickle_by_value(module)

    def get_parameters(self) -> dict[str, Any]:
        return {
            "min_samples_leaf": self.min_samples_leaf,
            "smoothing": self.smoothing,
            "visit_order": self.visit_order,
            "max_predictors": self.max_predictors,
        }
