"""Multi-table synthesis: groups of related dbt models synthesized as one synthetic twin.

A *group* is a connected set of opted-in dbt models linked by dbt ``relationships`` tests
(``ModelSpec.relationships``), for example ``customers -> accounts -> transactions``. A group is
synthesized together so that every foreign key of the synthetic output points at a synthetic
parent row and the number of children per parent follows the real distribution.

Two strategies:

* ``"hma"`` - SDV's ``HMASynthesizer`` (hierarchical modelling: each parent row is extended
  with the distribution parameters of its children). It models cross-table correlations, but
  SDV 2.0 Community refuses schemas with more than 5 tables or a depth above 2
  (:func:`hma_limits`), and it is slow on large child tables.
* ``"independent"`` - each table is synthesized on its own with the single-table synthesizer,
  then :func:`rekey_children` re-keys every child to the synthetic parents, drawing the number
  of children per parent from the real children-per-parent distribution. It scales like the
  single-table path but does not carry parent/child column correlations across the join
  (:func:`evaluate_cross_table_trends` measures exactly that loss).

Gates (all pure functions): :func:`evaluate_integrity` (share of child keys that resolve,
must be 1.0), :func:`evaluate_cardinality` (SDMetrics' ``CardinalityShapeSimilarity`` per
relationship) and :func:`evaluate_cross_table_trends` (SDMetrics' "Intertable Trends": Column
Pair Trends over the joined child/parent columns).

No Dagster and no MLflow here: the orchestration layer calls these functions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numba
import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from synth_platform.lib.errors import SpecError, TrainingError
from synth_platform.lib.evaluation import evaluate_fidelity
from synth_platform.lib.keys import KeyFormat
from synth_platform.lib.metadata import TableMetadata
from synth_platform.lib.plan import Relationship, TableGroup, groups_from_specs
from synth_platform.lib.progress import Tally

__all__ = [
    "HMA_MAX_DEPTH",
    "HMA_MAX_TABLES",
    "CardinalityResult",
    "CrossTableTrends",
    "HmaFit",
    "IntegrityResult",
    "Relationship",
    "Strategy",
    "TableGroup",
    "children_per_parent",
    "choose_strategy",
    "evaluate_cardinality",
    "evaluate_cross_table_trends",
    "evaluate_integrity",
    "fit_hma",
    "groups_from_specs",
    "hma_limits",
    "rekey_children",
    "sample_hma",
    "sdv_multi_metadata",
    "split_group",
]

Strategy = Literal["hma", "independent"]
"""How a group is synthesized (see the module docstring)."""

HMA_MAX_TABLES = 5
"""SDV 2.0 Community's ``HMASynthesizer`` refuses schemas with more tables than this."""

HMA_MAX_DEPTH = 2
"""... or with a longer parent -> child chain (depth counts tables: a->b is 2, a->b->c is 3)."""

HMA_MAX_ROWS = 50_000
"""Default row budget (all tables of a group together) above which ``choose_strategy`` prefers
``"independent"``: HMA fits one copula per parent row's children and grows superlinearly."""


def hma_limits(group: TableGroup) -> str | None:
    """Why SDV 2.0's ``HMASynthesizer`` refuses the group, or ``None`` when it accepts it."""
    problems = []
    if len(group.tables) > HMA_MAX_TABLES:
        problems.append(f"{len(group.tables)} tables (HMA allows {HMA_MAX_TABLES})")
    if group.depth > HMA_MAX_DEPTH:
        problems.append(f"a chain of {group.depth} tables (HMA allows {HMA_MAX_DEPTH})")
    if any(r.child == r.parent for r in group.relationships):
        problems.append("a self-reference")
    return "; ".join(problems) or None


def choose_strategy(
    group: TableGroup,
    rows: Mapping[str, int],
    *,
    requested: Strategy | Literal["auto"] = "auto",
    max_rows: int = HMA_MAX_ROWS,
    unsupported: Mapping[str, str] | None = None,
) -> tuple[Strategy, str]:
    """Pick the strategy for a group and say why.

    ``"auto"`` takes HMA when SDV accepts the schema (:func:`hma_limits`), the group has at
    most ``max_rows`` rows in all, and no table asks for a synthesizer setting HMA cannot
    honour (``unsupported``: table -> why, e.g. a CTGAN table or ``gaussian_kde``, which HMA's
    per-table copulas refuse); otherwise ``"independent"``. An explicit ``"hma"`` that SDV
    would refuse raises instead of silently falling back.

    Raises:
        SpecError: ``requested="hma"`` for a group HMA cannot model.
    """
    limit = hma_limits(group)
    if requested == "independent":
        return "independent", "requested"
    if requested == "hma":
        if limit:
            raise SpecError(
                model=group.tables[0],
                field="synthesizer",
                problem=(
                    f"group '{group.name}' ({', '.join(group.tables)}) has {limit}; SDV's HMA "
                    "cannot model it. Use the 'independent' multi-table strategy"
                ),
            )
        return "hma", "requested"
    if limit:
        return "independent", f"HMA refuses the schema: {limit}"
    total = sum(rows.get(t, 0) for t in group.tables)
    if total > max_rows:
        return "independent", f"{total} rows exceed the HMA budget of {max_rows}"
    if unsupported:
        why = "; ".join(f"'{t}' {reason}" for t, reason in sorted(unsupported.items()))
        return "independent", f"HMA cannot honour the table settings: {why}"
    return "hma", f"{len(group.tables)} tables, depth {group.depth}, {total} rows"


# -------------------------------------------------------------------------------- metadata


def sdv_multi_metadata(
    group: TableGroup,
    frames: Mapping[str, pd.DataFrame],
    single: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """SDV 2.0 multi-table metadata dict for the group.

    Args:
        group: The group.
        frames: Real tables (used to check that every key column is present).
        single: Per-table SDV metadata dicts as ``derive_metadata`` returns them (a dict with
            ``tables`` holding that one table, or the table's own dict).

    Returns:
        ``{"tables": ..., "relationships": [...], "METADATA_SPEC_VERSION": "V1"}`` where every
        foreign-key column has sdtype ``id`` (``derive_metadata`` sees it as numerical) and every
        parent has its referenced column as primary key.

    Raises:
        SpecError: A key column is missing from a table or from its metadata (for example
            because it was declared PII or excluded).
    """
    tables: dict[str, dict[str, Any]] = {}
    for table in group.tables:
        meta = single[table]
        meta = meta["tables"][table] if "tables" in meta else meta
        tables[table] = {
            **{k: v for k, v in meta.items() if k != "columns"},
            "columns": {c: dict(v) for c, v in meta["columns"].items()},
        }
    relationships = []
    for r in group.relationships:
        for table, column in ((r.child, r.child_column), (r.parent, r.parent_column)):
            if column not in frames[table].columns or column not in tables[table]["columns"]:
                raise SpecError(
                    model=table,
                    field="relationships",
                    problem=(
                        f"key column '{column}' of relationship {r.key} is not a modelled column "
                        f"of '{table}' (missing, PII or excluded); keys must be synthesized"
                    ),
                )
        tables[r.child]["columns"][r.child_column] = {"sdtype": "id"}
        tables[r.parent]["columns"][r.parent_column] = {"sdtype": "id"}
        tables[r.parent]["primary_key"] = r.parent_column
        relationships.append(
            {
                "parent_table_name": r.parent,
                "child_table_name": r.child,
                "parent_primary_key": r.parent_column,
                "child_foreign_key": r.child_column,
            }
        )
    return {"tables": tables, "relationships": relationships, "METADATA_SPEC_VERSION": "V1"}


# ------------------------------------------------------------------------------------- HMA


@dataclass(frozen=True)
class HmaFit:
    """A fitted ``HMASynthesizer`` and what it took."""

    synthesizer: Any
    fit_seconds: float
    rows: dict[str, int]


def _modelled_frames(
    frames: Mapping[str, pd.DataFrame], metadata: Mapping[str, Any]
) -> dict[str, pd.DataFrame]:
    """Only the metadata's columns, as the single-table synthesizers take them
    (:func:`synthesis.model_frame`: DATEs, TIMESTAMPTZ, DECIMAL, ENUM converted), datetimes
    normalised to nanoseconds (RDT's unit)."""
    from synth_platform.lib.synthesis import model_frame

    out = {}
    for table, tmeta in metadata["tables"].items():
        data = model_frame(frames[table][list(tmeta["columns"])])
        for column, cmeta in tmeta["columns"].items():
            if cmeta.get("sdtype") == "datetime" and data[column].dtype != "datetime64[ns]":
                data[column] = pd.to_datetime(data[column]).astype("datetime64[ns]")
        out[table] = data
    return out


def fit_hma(
    *,
    group: TableGroup,
    frames: Mapping[str, pd.DataFrame],
    metadata: Mapping[str, Any],
    seed: int,
    table_parameters: Mapping[str, Mapping[str, Any]] | None = None,
) -> HmaFit:
    """Fit SDV's ``HMASynthesizer`` on the group's real tables.

    Args:
        group: The group.
        frames: Real tables (extra columns such as PII are dropped).
        metadata: :func:`sdv_multi_metadata`'s dict.
        seed: Seeds Python, NumPy and torch before fitting.
        table_parameters: Optional per-table ``GaussianCopulaSynthesizer`` parameters
            (``HMASynthesizer.set_table_parameters``; ``gaussian_kde`` is not allowed).

    Raises:
        TrainingError: SDV refused the schema or the data (message names the group).
    """
    from sdv.metadata import Metadata
    from sdv.multi_table import HMASynthesizer

    from synth_platform.lib.synthesis import seed_everything

    limit = hma_limits(group)
    if limit:
        raise TrainingError(
            f"group '{group.name}': HMA cannot model {limit}; use the 'independent' strategy."
        )
    data = _modelled_frames(frames, metadata)
    seed_everything(seed)
    try:
        synth = HMASynthesizer(Metadata.load_from_dict(dict(metadata)), verbose=False)
        for table, params in (table_parameters or {}).items():
            synth.set_table_parameters(table, dict(params))
        start = time.perf_counter()
        synth.fit(data)
        elapsed = time.perf_counter() - start
    except Exception as exc:  # SDV raises many types; re-raise with the group named
        raise TrainingError(
            f"group '{group.name}' ({', '.join(group.tables)}): HMA could not be fitted: {exc}. "
            "Check that the real keys resolve (dbt `relationships` tests pass) and the column "
            "types, or use the 'independent' strategy."
        ) from exc
    return HmaFit(synthesizer=synth, fit_seconds=elapsed, rows={t: len(d) for t, d in data.items()})


def sample_hma(*, synthesizer: Any, scale: float, seed: int) -> dict[str, pd.DataFrame]:
    """Sample every table of a fitted HMA; the same model, scale and seed give the same rows.

    ``scale`` multiplies the real row count of the root tables; child counts follow the
    learned cardinalities.
    """
    synthesizer.reset_sampling()
    synthesizer._numpy_seed = int(seed) % 2**32  # SDV has no public seed argument on sample
    return dict(synthesizer.sample_scale(scale=float(scale)))


# ------------------------------------------------------------------------ independent keys


def children_per_parent(parent_keys: pd.Series, child_keys: pd.Series) -> np.ndarray:
    """Number of children of every parent row (zeros included), in parent row order.

    Same definition as SDMetrics' ``get_cardinality_distribution``: child rows with a null key
    or a key that matches no parent are not counted.
    """
    counts = child_keys.value_counts(dropna=True)
    return parent_keys.map(counts).fillna(0).to_numpy(dtype=float)


def _apportion(weights: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Integers proportional to ``weights`` summing to ``total`` (largest remainder, random
    tie-break). All-zero weights are treated as uniform."""
    if total == 0 or weights.size == 0:
        return np.zeros(weights.size, dtype=np.int64)
    if weights.sum() <= 0:
        weights = np.ones(weights.size)
    exact = weights * (total / weights.sum())
    base = np.floor(exact).astype(np.int64)
    short = total - int(base.sum())
    if short > 0:
        remainder = exact - base
        order = np.lexsort((rng.random(weights.size), -remainder))
        base[order[:short]] += 1
    return base


def _keys_from_index(parent_keys: pd.Series, index: np.ndarray) -> pd.Series:
    """Parent keys at ``index`` (``-1`` = null), keeping an integer dtype where possible."""
    values = parent_keys.reset_index(drop=True).take(np.where(index >= 0, index, 0))
    values = values.reset_index(drop=True)
    null = index < 0
    if not null.any():
        return values
    if pd.api.types.is_integer_dtype(values.dtype):
        values = values.astype("Int64")
    elif not pd.api.types.is_float_dtype(values.dtype):
        values = values.astype(object)
    return values.mask(pd.Series(null))


def rekey_children(
    *,
    group: TableGroup,
    real: Mapping[str, pd.DataFrame],
    synthetic: Mapping[str, pd.DataFrame],
    seed: int,
    profiles: Mapping[str, TableMetadata] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Point every synthetic child row at a synthetic parent ("independent" strategy).

    With ``profiles`` (per-table metadata naming the columns to compare) the keys are
    *matched*, so that parent/child column dependencies survive the re-keying: the real
    parents' child counts are placed on the synthetic parents nearest to them (largest first,
    one count per parent: :func:`_place_counts`), and each synthetic child goes to the
    synthetic parent nearest to the real parent of its own nearest real child, among parents
    with a count left (the 32 nearest distinct parent profiles, then any parent with a count
    left). Profiles are range-scaled numbers and one-hot categories; children and parents are
    compared on their canonical correlation directions (what one table's columns say about
    the other's, :func:`_canonical_spaces`), or on each table's 4 leading principal
    components when nothing correlates (see :func:`_profile_space`); the searches are
    approximate KD-tree queries (within twice the nearest distance) against at most 250,000
    real rows, so the work grows near-linearly, and it runs in chunks of 50,000 children so
    that a signal handler (a run's termination) gets to run between chunks. Real rows only
    steer the pairing; no real value reaches the output. Without ``profiles``, the pairing is
    random:

    For each relationship (children after their parents): every synthetic parent draws a child
    count from the real children-per-parent distribution (zeros included); the counts are
    scaled to the number of synthetic child rows that get a key (largest remainder) and the
    child rows, shuffled, are handed out accordingly. The real share of null keys is kept.
    Primary keys are not touched (unless the foreign key *is* the child's primary key, a 1:1
    table: then duplicates are possible when children outnumber parents, and the child's
    key-uniqueness checks block them), so a table that is both child and parent keeps its
    own children.

    Args:
        group: The group.
        real: Real tables (the key columns, and the profile columns when matching).
        synthetic: Synthetic tables; a child may lack its foreign-key column (it is added).
            Null or duplicate parent keys are skipped (one target per distinct key) and left
            for :func:`evaluate_integrity` to report.
        seed: Seeds every random choice: the same inputs and seed give the same keys.
        profiles: ``TableMetadata`` per table, to match keys on profiles (see above).
        progress: Called as ``progress(rows_done, rows_total)`` after each chunk of child
            rows (``rows_total`` counts the child rows of every relationship), e.g. to log.

    Returns:
        New frames for every table of the group (children with the foreign keys replaced, in
        the real table's column order where the columns match), indexed ``0..n-1``. The
        inputs are left as they are; the columns not replaced are shared with them, not copied
        (copy a frame before writing into its values).

    Raises:
        ValueError: A synthetic parent has no keys but its child has rows that need one.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x6B657973]))
    out = {t: _own_frame(synthetic[t]) for t in group.tables}
    tally = Tally(progress, sum(len(out[r.child]) for r in group.relationships))
    for r in group.relationships:
        start = tally.done
        # A defective parent (null or duplicate keys) is re-keyed against its distinct keys
        # and left for the gates to block (integrity counts the duplicates), not raised here.
        parent_keys = out[r.parent][r.parent_column].dropna().drop_duplicates()
        real = _comparable_keys(r, real)
        real_child = real[r.child][r.child_column]
        real_counts = children_per_parent(real[r.parent][r.parent_column], real_child)
        null_share = float(real_child.isna().mean()) if len(real_child) else 0.0

        n_child = len(out[r.child])
        n_null = round(null_share * n_child)
        # Real keys that point at no parent (allowed by a `severity: warn` test) keep their
        # share: that many rows get fresh keys in the parent keys' format, matching nothing.
        real_set = real_child.dropna()
        orphan_share = (
            float((~real_set.isin(real[r.parent][r.parent_column].dropna())).mean())
            if r.orphans and len(real_set)
            else 0.0
        )
        n_orphan = round(orphan_share * (n_child - n_null))
        n_keyed = n_child - n_null - n_orphan
        if n_keyed and not len(parent_keys):
            raise ValueError(
                f"{r.key}: {n_keyed} synthetic '{r.child}' rows need a parent but synthetic "
                f"'{r.parent}' is empty"
            )
        order = rng.permutation(n_child)
        keyed, orphaned = order[:n_keyed], order[n_keyed : n_keyed + n_orphan]
        index = np.full(n_child, -1, dtype=np.int64)
        matched = (
            _matched_parents(
                r, real, out, parent_keys, keyed, real_counts, n_keyed, profiles, rng, tally.advance
            )
            if profiles is not None and real_counts.size and n_keyed
            else None
        )
        if matched is not None:
            index[keyed] = matched
        else:
            drawn = (
                rng.choice(real_counts, size=len(parent_keys), replace=True)
                if real_counts.size
                else np.zeros(len(parent_keys))
            )
            counts = _apportion(drawn, n_keyed, rng)
            index[keyed] = np.repeat(np.arange(len(parent_keys)), counts)
        keys = _keys_from_index(parent_keys, index)
        if n_orphan:
            fresh = KeyFormat.learn(real[r.parent][r.parent_column]).generate(
                n_orphan, seed=int(rng.integers(2**31)),
                forbidden=pd.concat([real[r.parent][r.parent_column], real_set, parent_keys]),
            ).values  # fmt: skip
            keys = keys.astype(object)
            keys.iloc[orphaned] = fresh
            if pd.api.types.is_integer_dtype(parent_keys.dtype):
                keys = keys.astype("Int64")
        out[r.child][r.child_column] = keys.set_axis(out[r.child].index)
        order = list(real[r.child].columns)
        current = list(out[r.child].columns)
        if order != current and len(order) == len(current) and set(order) == set(current):
            out[r.child] = out[r.child][order]  # a copy: only when the order differs
        rest = start + n_child - tally.done  # the rows without a key, or all of a random pairing
        tally.advance(rest)
    return out


def _own_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame whose columns :func:`rekey_children` may replace without touching ``frame``,
    indexed ``0..n-1``: a shallow copy when ``frame`` already is (a column is only ever
    replaced, never written into), else ``reset_index``. A full copy of the 1M-row
    transactions took 0.02 s warm, 0.3 s in a profiled run."""
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return frame.copy(deep=False)
    return frame.reset_index(drop=True)


def _comparable_keys(
    r: Relationship, real: Mapping[str, pd.DataFrame]
) -> Mapping[str, pd.DataFrame]:
    """``real`` with the relationship's two key columns as text when their dtypes differ
    (integer ids on one side, text on the other), so that they still match."""
    fk, pk = real[r.child][r.child_column], real[r.parent][r.parent_column]
    if fk.dtype == pk.dtype or (
        pd.api.types.is_numeric_dtype(fk) and pd.api.types.is_numeric_dtype(pk)
    ):
        return real
    as_text = {
        r.child: real[r.child].assign(**{r.child_column: fk.astype(str).where(fk.notna())}),
        r.parent: real[r.parent].assign(**{r.parent_column: pk.astype(str).where(pk.notna())}),
    }
    return {**real, **as_text}


# Matched re-keying (see :func:`rekey_children`). Every neighbour search is a KD-tree query on a
# few profile dimensions, and every C or compiled call handles at most ``_CHUNK_ROWS`` rows, so
# the work grows near-linearly and a Python signal handler (Dagster's run termination raises
# ``KeyboardInterrupt`` from SIGINT/SIGTERM) runs between chunks, well within a second.
_CHUNK_ROWS = 50_000
_SEARCH_DIMENSIONS = 4
"""Profiles wider than this are reduced to their first principal components (fitted on real
rows): a KD-tree stays fast only in a few dimensions (scipy cKDTree, 2 cores, 1M queries
among 1M Gaussian points, one-off timing on a shared machine: exact 5.8 s in 4 dimensions,
18 s in 6, 84 s in 8; with ``eps=1`` 1.8 s in 4, about 9 s in 6)."""
_SEARCH_EPS = 1.0
"""KD-tree queries return neighbours within ``1 + eps`` times the true distances (approximate
search in the sense of Arya and Mount, whose work per query is bounded in fixed dimension)."""
_CANDIDATES = 32
"""Distinct synthetic parent profiles a child may take, nearest first, before a random one."""
_MAX_REFERENCE = 250_000
"""Real rows that steer the pairing, at most (a seeded subsample beyond): bounds the one
uninterruptible KD-tree build per table."""
_MAX_CATEGORIES = 100
"""One-hot columns per categorical profile column (its most frequent real categories; rarer
ones are encoded as unseen, equally far from every category)."""
_PCA_ROWS = 20_000
"""Real rows the principal components are fitted on, at most."""
_DECIMALS = 9
"""Profile coordinates are rounded to this many decimals before equal rows are merged."""


@dataclass(frozen=True)
class _ProfileSpace:
    """Coordinates for the rows of one table, learned from its real rows (:func:`_profile_space`).

    Attributes:
        numeric: ``(column, is datetime, low, span)`` of every numeric or datetime column: the
            value scaled by the real range, and a missing flag (missing values sit mid-range).
        categorical: ``(column, categories)``: a one-hot block over the real categories.
        center: Mean of the encoded real rows (zeros when no reduction is needed).
        axes: ``(encoded width, dimensions)`` projection: the identity when the encoding has at
            most ``_SEARCH_DIMENSIONS`` columns, else the leading principal axes.
    """

    numeric: tuple[tuple[str, bool, float, float], ...]
    categorical: tuple[tuple[str, pd.Index], ...]
    center: np.ndarray
    axes: np.ndarray

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the coordinates read."""
        return (*(c for c, *_ in self.numeric), *(c for c, _ in self.categorical))

    @property
    def width(self) -> int:
        """Columns of the encoding (before the projection)."""
        return 2 * len(self.numeric) + sum(len(c) for _, c in self.categorical)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """The full encoding, ``(rows, width)`` (only for samples: it is wide)."""
        return self._apply(frame, np.eye(self.width), np.zeros(self.width))

    def coordinates(self, frame: pd.DataFrame) -> np.ndarray:
        """Projected coordinates, ``(rows, dimensions)``, rounded to ``_DECIMALS``; computed
        column by column without materialising the one-hot blocks, ``_CHUNK_ROWS`` rows at a
        time (contiguous slices, not copies), so that a signal handler runs between chunks.
        Each row's coordinates depend on that row alone."""
        out = np.empty((len(frame), self.axes.shape[1]))
        for lo in range(0, len(frame), _CHUNK_ROWS):
            chunk = frame.iloc[lo : lo + _CHUNK_ROWS]
            out[lo : lo + len(chunk)] = np.round(
                self._apply(chunk, self.axes, self.center), _DECIMALS
            )
        return out

    def _apply(self, frame: pd.DataFrame, axes: np.ndarray, center: np.ndarray) -> np.ndarray:
        width = axes.shape[1]
        out = np.tile(-(center @ axes), (len(frame), 1))
        at = 0
        for c, is_datetime, low, span in self.numeric:
            scaled = (_as_float(frame[c], datetime=is_datetime) - low) / span
            missing = np.isnan(scaled)
            out += np.where(missing, 0.5, scaled)[:, None] * axes[at]
            out += missing[:, None] * axes[at + 1]
            at += 2
        for c, categories in self.categorical:
            # A row per category, then zeros for an unseen one (code -1): adding zeros leaves
            # a row as it is, without a masked read and write of ``out``.
            block = np.vstack([axes[at : at + len(categories)] / np.sqrt(2), np.zeros(width)])
            out += block[categories.get_indexer(_as_text(frame[c]))]
            at += len(categories)
        return out


def _profile_space(
    meta: TableMetadata, exclude: Collection[str], real: pd.DataFrame, rng: np.random.Generator
) -> _ProfileSpace:
    """Encode rows in one space learned from ``real``: numeric and datetime columns scaled by
    the real range (missing: a flag column and the middle of the range), categorical columns
    one-hot over the real categories, each column weighing about the same; then reduced to at
    most ``_SEARCH_DIMENSIONS`` principal components of the real rows when wider."""
    numeric = []
    for c in (*meta.numeric, *meta.datetime):
        if c in exclude:
            continue
        values = _as_float(real[c], datetime=c in meta.datetime)
        lo, hi = np.nanmin(values, initial=np.inf), np.nanmax(values, initial=-np.inf)
        lo, span = (lo, hi - lo) if hi > lo else (0.0 if not np.isfinite(lo) else lo, 1.0)
        numeric.append((c, c in meta.datetime, float(lo), float(span)))
    categorical = []
    for c in meta.categorical:
        if c in exclude:
            continue
        counts = _as_text(real[c]).value_counts()
        if len(counts) > _MAX_CATEGORIES:
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            counts = counts.loc[[name for name, _ in ranked[:_MAX_CATEGORIES]]]
        categorical.append((c, pd.Index(counts.index)))
    space = _ProfileSpace(tuple(numeric), tuple(categorical), np.zeros(0), np.zeros((0, 0)))
    width = space.width
    if width <= _SEARCH_DIMENSIONS or len(real) < 2:
        return _ProfileSpace(space.numeric, space.categorical, np.zeros(width), np.eye(width))
    sample = real.iloc[np.sort(rng.permutation(len(real))[:_PCA_ROWS])]
    encoded = space.encode(sample)
    center = encoded.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov(encoded - center, rowvar=False))
    axes = vectors[:, ::-1][:, :_SEARCH_DIMENSIONS]  # eigh sorts ascending
    return _ProfileSpace(space.numeric, space.categorical, center, np.ascontiguousarray(axes))


_MIN_CANONICAL = 0.1
"""Canonical correlations below this are taken for noise (about ``sqrt(width / rows)`` for
independent columns: 0.035 for 25 encoded columns and 20,000 rows)."""


def _canonical_spaces(
    child: _ProfileSpace,
    parent: _ProfileSpace,
    child_rows: pd.DataFrame,
    parent_rows: pd.DataFrame,
    rng: np.random.Generator,
) -> tuple[_ProfileSpace, _ProfileSpace]:
    """The spaces children and parents are matched in: what each says about the other.

    Principal components of a child alone follow its own variance: a skewed 16-code category
    and a uniform date outweigh the one column of a flight that depends on its airport (its
    distance), and the match loses that dependence. Here the axes are the canonical
    directions (canonical correlation analysis, ridge-regularised) of the real child rows
    (``child_rows``) and their parents' rows (``parent_rows``, aligned), each scaled by its
    canonical correlation, at most ``_SEARCH_DIMENSIONS`` of them. When no correlation
    reaches ``_MIN_CANONICAL`` (nothing to keep) both spaces are returned as they are (the
    same objects).
    """
    take = np.sort(rng.permutation(len(child_rows))[:_PCA_ROWS])
    if len(take) < 2 or not (child.width and parent.width):
        return child, parent
    x = child.encode(child_rows.iloc[take])
    y = parent.encode(parent_rows.iloc[take])
    x_center, y_center = x.mean(axis=0), y.mean(axis=0)
    x, y = x - x_center, y - y_center

    def inverse_sqrt(cov: np.ndarray) -> np.ndarray:
        cov = cov + (1e-3 * float(np.trace(cov)) / len(cov) + 1e-9) * np.eye(len(cov))
        values, vectors = np.linalg.eigh(cov)
        return (vectors / np.sqrt(np.maximum(values, 1e-12))) @ vectors.T

    n = len(x)
    wx, wy = inverse_sqrt(x.T @ x / n), inverse_sqrt(y.T @ y / n)
    u, corr, vt = np.linalg.svd(wx @ (x.T @ y / n) @ wy, full_matrices=False)
    k = int(min(_SEARCH_DIMENSIONS, np.sum(corr >= _MIN_CANONICAL)))
    if k == 0:
        return child, parent
    x_axes = np.ascontiguousarray((wx @ u[:, :k]) * corr[:k])
    y_axes = np.ascontiguousarray((wy @ vt[:k].T) * corr[:k])
    return (
        _ProfileSpace(child.numeric, child.categorical, x_center, x_axes),
        _ProfileSpace(parent.numeric, parent.categorical, y_center, y_axes),
    )


def _as_text(values: pd.Series) -> pd.Series:
    """Categories as text, ``values.astype(str)`` (a missing value as ``"nan"`` / ``"None"`` /
    ``"<NA>"``, a category of its own); a column of strings only, without nulls, as it is.

    Booleans, integers, categoricals, strings and datetimes (every dtype but object and float,
    whose distinct values may print alike or apart: ``1`` and ``True``, ``0.0`` and ``-0.0``)
    are converted one distinct value at a time: ``astype(str)`` formats each value, 0.145 s
    for 1M booleans, against 0.01 s this way (same text)."""
    if pd.api.types.is_object_dtype(values.dtype):
        if pd.api.types.infer_dtype(values, skipna=False) == "string":
            return values
        return values.astype(str)
    if values.dtype.kind in "fc":
        return values.astype(str)
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    text = np.asarray(pd.Index(distinct).astype(str), dtype=object)
    return pd.Series(text[codes], index=values.index, name=values.name)


def _as_float(values: pd.Series, *, datetime: bool) -> np.ndarray:
    """Numbers as float (NaN for missing); datetimes as nanoseconds since the epoch."""
    if not datetime:
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(values):  # already datetimes (aware: UTC)
        ns = values.to_numpy("datetime64[ns]")
        out = ns.view("int64").astype(float)
        out[np.isnat(ns)] = np.nan
        return out
    stamps = pd.to_datetime(values, utc=True)
    out = stamps.dt.tz_localize(None).to_numpy("datetime64[ns]").astype("int64").astype(float)
    out[stamps.isna().to_numpy()] = np.nan
    return out


class _Neighbours:
    """A KD-tree over the distinct rows of ``points``; equal rows form one *group*.

    Merging equal rows keeps the tree search fast on tied data (a categorical-only profile has a
    handful of distinct points), and lets ties be broken at random instead of by row order.

    Attributes:
        group_of: Group of every row of ``points``.
        members: Rows ordered by group, in random order within a group.
        start: Group ``g``'s rows are ``members[start[g]:start[g + 1]]``.
    """

    def __init__(self, points: np.ndarray, rng: np.random.Generator) -> None:
        from scipy.spatial import cKDTree

        distinct, inverse = _unique_rows(points)
        self.group_of = inverse
        self.members = np.lexsort((rng.random(len(points)), self.group_of)).astype(np.int64)
        sizes = np.bincount(self.group_of, minlength=len(distinct))
        self.start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.groups = len(distinct)
        self._tree = cKDTree(distinct)

    def nearest_groups(self, query: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` (at most the number of groups) nearest groups of each query row,
        ``(rows, k)``, nearest first; one KD-tree call per ``_CHUNK_ROWS`` rows."""
        k = min(k, self.groups)
        out = np.empty((len(query), k), dtype=np.int64)
        for lo in range(0, len(query), _CHUNK_ROWS):
            chunk = query[lo : lo + _CHUNK_ROWS]
            _, found = self._tree.query(chunk, k=k, eps=_SEARCH_EPS, workers=-1)
            out[lo : lo + len(chunk)] = np.reshape(found, (len(chunk), k))
        return out

    def nearest_rows(self, query: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A row of ``points`` nearest to each query row (one drawn at random among equals)."""
        group = self.nearest_groups(query, 1)[:, 0]
        size = self.start[group + 1] - self.start[group]
        return self.members[self.start[group] + (rng.random(len(group)) * size).astype(np.int64)]


def _unique_rows(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(points, axis=0, return_inverse=True)``, the same arrays, by a lexicographic
    sort of the columns instead of a sort of row records: 0.10 s against 0.49 s for 250,000
    tied rows of 4 columns (0.32 s against 0.40 s for 8 distinct float columns)."""
    n = len(points)
    if n == 0 or points.shape[1] == 0:
        distinct, inverse = np.unique(points, axis=0, return_inverse=True)
        return distinct, inverse.reshape(-1).astype(np.int64)
    order = np.lexsort(points.T[::-1])  # the first column sorts first, as np.unique does
    ordered = points[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.any(ordered[1:] != ordered[:-1], axis=1, out=new[1:])
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


# The compiled kernels name their argument types, so numba compiles them (or loads them from
# its cache) when this module is imported, with the other imports (preloaded in a forkserver),
# not in the first re-keying of each process: 0.09 s more at import, where the first call of
# `_place_kernel` took 0.3 s (2 cores, cached kernels).
_I1, _I2 = numba.int64[:], numba.int64[:, :]


@numba.njit(numba.void(_I1, _I2, *[_I1] * 9), cache=True, nogil=True)
def _assign_kernel(
    targets, candidates, members, member_at, group_end, group_of, group_left, left, spare,
    spare_at, out,
):  # pragma: no cover - compiled  # fmt: skip
    for i in range(targets.size):
        group = -1
        if targets[i] >= 0:
            for g in candidates[targets[i]]:
                if group_left[g] > 0:
                    group = g
                    break
        if group >= 0:
            at = member_at[group]
            while at < group_end[group] and left[members[at]] == 0:
                at += 1
            member_at[group] = at
            chosen = members[at]
        else:
            at = spare_at[0]
            while left[spare[at]] == 0:
                at -= 1
            spare_at[0] = at
            chosen = spare[at]
        left[chosen] -= 1
        group_left[group_of[chosen]] -= 1
        out[i] = chosen


def _matched_parents(
    r: Relationship,
    real: Mapping[str, pd.DataFrame],
    synthetic: Mapping[str, pd.DataFrame],
    parent_keys: pd.Series,
    keyed: np.ndarray,
    real_counts: np.ndarray,
    n_keyed: int,
    profiles: Mapping[str, TableMetadata],
    rng: np.random.Generator,
    advance: Callable[[int], None],
) -> np.ndarray | None:
    """Parent position (in ``parent_keys``) for each ``keyed`` child row, matched on profiles;
    ``None`` when either side has no profile column.

    Every search is an approximate KD-tree query in at most ``_SEARCH_DIMENSIONS`` dimensions
    (twice that among parents) against at most ``_MAX_REFERENCE`` real children (or the
    synthetic parents), and the children are handled in chunks of ``_CHUNK_ROWS``
    (``advance`` is called after each), so the work is near-linear and interruptible between
    chunks.
    """
    keys = {r.child_column, r.parent_column}
    real_parent, real_child = real[r.parent], real[r.child]
    if not (len(real_parent) and len(real_child)):
        return None
    parent_space = _profile_space(profiles[r.parent], keys, real_parent, rng)
    child_space = _profile_space(profiles[r.child], keys, real_child, rng)
    if not (parent_space.width and child_space.width):
        return None
    # Targets: the real parent of a nearest real child (among real children with a parent).
    real_fk, real_pk = real_child[r.child_column], real_parent[r.parent_column]
    first = ~real_pk.duplicated().to_numpy()  # a duplicated real key: its first row
    parent_position = pd.Series(np.flatnonzero(first), index=real_pk.to_numpy()[first])
    real_target = parent_position.reindex(real_fk.to_numpy()).to_numpy(dtype=float)
    with_parent = np.flatnonzero(~np.isnan(real_target))
    with_parent = with_parent[_subsample(len(with_parent), rng)]
    real_target = real_target[with_parent].astype(np.int64)
    # Children and parents meet in the space of what one says about the other.
    child_space, match_space = _canonical_spaces(
        child_space, parent_space, real_child.iloc[with_parent], real_parent.iloc[real_target],
        rng,
    )  # fmt: skip

    # Parents are placed and found on their own leading components and, beside them, on what
    # they say about their children: either alone loses hubs or children's dependence.
    def parent_coordinates(frame: pd.DataFrame) -> np.ndarray:
        own = parent_space.coordinates(frame)
        if match_space is parent_space:
            return own
        return np.hstack([own, match_space.coordinates(frame)])

    real_parent_xy = parent_coordinates(real_parent)
    parent_xy = parent_coordinates(synthetic[r.parent].loc[parent_keys.index])
    capacity = _apportion(_place_counts(real_counts, real_parent_xy, parent_xy, rng), n_keyed, rng)
    # Only parents with a count take children: searching among the others too would fill a
    # child's candidate list with parents it cannot go to where few parents hold the children
    # (100 of 1,458 airports receive every flight), sending it to a random one instead.
    open_parents = np.flatnonzero(capacity > 0)
    synthetic_parents = _Neighbours(parent_xy[open_parents], rng)
    group_of = np.full(len(parent_xy), -1, dtype=np.int64)
    group_of[open_parents] = synthetic_parents.group_of
    members = open_parents[synthetic_parents.members]
    # Candidates: the synthetic parent groups nearest to each targeted real parent.
    targeted, slot_of_child = np.unique(real_target, return_inverse=True)
    candidates = (
        synthetic_parents.nearest_groups(real_parent_xy[targeted], _CANDIDATES)
        if len(targeted)
        else np.zeros((0, 1), dtype=np.int64)
    )
    children = (
        _Neighbours(child_space.coordinates(real_child.iloc[with_parent]), rng)
        if len(with_parent)
        else None
    )
    # Greedy, in random order: the nearest parent with a count left, else any parent with one.
    left = capacity.astype(np.int64)
    group_left = np.bincount(
        synthetic_parents.group_of, weights=left[open_parents], minlength=synthetic_parents.groups
    ).astype(np.int64)
    member_at = synthetic_parents.start[:-1].copy()
    spare = rng.permutation(np.flatnonzero(left > 0)).astype(np.int64)
    spare_at = np.array([len(spare) - 1], dtype=np.int64)
    order = rng.permutation(len(keyed))
    out = np.empty(len(keyed), dtype=np.int64)
    # Every synthetic child's coordinates, from contiguous slices of its frame (taking the
    # keyed rows of the frame first, then a chunk of them, copied its object columns twice:
    # ~0.4 s of the 1M-row transactions' re-keying).
    child_xy = None if children is None else child_space.coordinates(synthetic[r.child])
    slot_of_child = slot_of_child.reshape(-1).astype(np.int64)
    for lo in range(0, len(order), _CHUNK_ROWS):
        rows = order[lo : lo + _CHUNK_ROWS]
        if children is None or child_xy is None:
            targets = np.full(len(rows), -1, dtype=np.int64)
        else:
            targets = slot_of_child[children.nearest_rows(child_xy[keyed[rows]], rng)]
        chosen = np.empty(len(rows), dtype=np.int64)
        _assign_kernel(
            targets, candidates, members, member_at, synthetic_parents.start[1:], group_of,
            group_left, left, spare, spare_at, chosen,
        )  # fmt: skip
        out[rows] = chosen
        advance(len(rows))
    return out


def _place_counts(
    real_counts: np.ndarray,
    real_xy: np.ndarray,
    synthetic_xy: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """A child count for every synthetic parent: the real parents' counts (a random subset of
    them, or all and a resample, to one per synthetic parent), each placed on the synthetic
    parent nearest to its real parent that has no count yet, largest counts first (then any
    free one).

    At equal sizes the counts are the real ones, permuted: the children-per-parent shape
    stays, hubs included, and each count sits where its real parent sits, so the children
    that go to a parent like it find one with room. (Drawing each synthetic parent's count
    from its nearest real parent instead left about a third of the real parents without a
    counterpart, and their children to random parents: 100 of 1,458 airports receive every
    flight.) Only real parents with children are searched for.
    """
    m, n = len(synthetic_xy), len(real_counts)
    order = rng.permutation(n)
    donors = order[:m] if m <= n else np.concatenate([order, rng.choice(n, m - n)])
    if real_counts[donors].sum() <= 0 < real_counts.sum():
        # Fewer synthetic parents than real ones, and the subset missed every parent with
        # children (3 hubs among 1,000, 50 synthetic parents): one of them, drawn by its
        # count, takes a slot, or the children would be spread evenly over every parent.
        donors[0] = rng.choice(n, p=real_counts / real_counts.sum())
    donors = donors[real_counts[donors] > 0]
    donors = donors[np.lexsort((rng.random(len(donors)), -real_counts[donors]))]
    out = np.zeros(m, dtype=float)
    if not len(donors):
        return out
    from scipy.spatial import cKDTree

    k = min(m, _CANDIDATES)
    near = np.empty((len(donors), k), dtype=np.int64)
    tree = cKDTree(synthetic_xy)
    for lo in range(0, len(donors), _CHUNK_ROWS):
        chunk = real_xy[donors[lo : lo + _CHUNK_ROWS]]
        _, found = tree.query(chunk, k=k, eps=_SEARCH_EPS, workers=-1)
        near[lo : lo + len(chunk)] = np.reshape(found, (len(chunk), k))
    place = np.empty(len(donors), dtype=np.int64)
    _place_kernel(near, rng.permutation(m).astype(np.int64), place)
    out[place] = real_counts[donors]
    return out


@numba.njit(numba.void(_I2, _I1, _I1), cache=True, nogil=True)
def _place_kernel(near, free, out):  # pragma: no cover - compiled
    used = np.zeros(free.size, dtype=np.bool_)
    at = 0
    for i in range(near.shape[0]):
        chosen = -1
        for p in near[i]:
            if not used[p]:
                chosen = p
                break
        if chosen < 0:
            while used[free[at]]:
                at += 1
            chosen = free[at]
        used[chosen] = True
        out[i] = chosen


def _subsample(n: int, rng: np.random.Generator) -> np.ndarray:
    """Positions ``0..n-1``, or ``_MAX_REFERENCE`` of them drawn at random (sorted)."""
    if n <= _MAX_REFERENCE:
        return np.arange(n)
    return np.sort(rng.choice(n, _MAX_REFERENCE, replace=False))


def split_group(
    *, group: TableGroup, frames: Mapping[str, pd.DataFrame], holdout: float, seed: int
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Train/holdout split that keeps the training tables referentially intact.

    Root rows are held out at random (share ``holdout``); a child row is held out when any of
    its parents is (so whole families move together), and rows without a parent key are held
    out at random. Every training foreign key therefore resolves inside the training tables,
    which HMA requires; the holdout share of a child table drifts above ``holdout`` when it has
    several parents.

    Returns:
        ``(train, holdout)`` frames per table.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x73706C74]))
    held: dict[str, np.ndarray] = {}
    for table in group.tables:
        frame = frames[table]
        rels = [r for r in group.relationships if r.child == table]
        if not rels:
            mask = np.zeros(len(frame), dtype=bool)
            mask[rng.permutation(len(frame))[: round(holdout * len(frame))]] = True
        else:
            mask = np.zeros(len(frame), dtype=bool)
            no_parent = np.ones(len(frame), dtype=bool)
            for r in rels:
                parent = frames[r.parent]
                held_keys = parent.loc[held[r.parent], r.parent_column]
                fk = frame[r.child_column]
                mask |= fk.isin(held_keys).to_numpy()
                no_parent &= fk.isna().to_numpy()
            mask |= no_parent & (rng.random(len(frame)) < holdout)
        held[table] = mask
    train = {t: frames[t].loc[~held[t]].reset_index(drop=True) for t in group.tables}
    test = {t: frames[t].loc[held[t]].reset_index(drop=True) for t in group.tables}
    return train, test


# ----------------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class IntegrityResult:
    """Referential integrity of one relationship in the synthetic output.

    Attributes:
        share: Share of non-null child keys that match a parent key (1.0 when none is set).
        orphans: Child rows whose non-null key matches no parent.
        checked: Child rows with a non-null key.
        duplicate_parent_keys: Parent rows whose key is duplicated or null (ambiguous targets).
    """

    share: float
    orphans: int
    checked: int
    duplicate_parent_keys: int

    @property
    def passed(self) -> bool:
        """Every key resolves and every parent key is unique."""
        return self.orphans == 0 and self.duplicate_parent_keys == 0


def evaluate_integrity(
    *, group: TableGroup, synthetic: Mapping[str, pd.DataFrame]
) -> dict[str, IntegrityResult]:
    """Per relationship (``Relationship.key``): do the synthetic child keys resolve?"""
    results = {}
    for r in group.relationships:
        parent_keys = synthetic[r.parent][r.parent_column]
        child_keys = synthetic[r.child][r.child_column].dropna()
        resolved = int(child_keys.isin(parent_keys.dropna()).sum())
        checked = len(child_keys)
        present = parent_keys.dropna()
        duplicates = int(present.duplicated(keep=False).sum()) + len(parent_keys) - len(present)
        results[r.key] = IntegrityResult(
            share=resolved / checked if checked else 1.0,
            orphans=checked - resolved,
            checked=checked,
            duplicate_parent_keys=duplicates,
        )
    return results


@dataclass(frozen=True)
class CardinalityResult:
    """Children-per-parent fidelity of one relationship.

    Attributes:
        score: The gated score. ``1 - KS`` statistic between the real and synthetic
            children-per-parent counts (zeros included): SDMetrics'
            ``CardinalityShapeSimilarity`` for this relationship. For a key into a reference
            table, ``share_score`` instead when it is the sharper test (see ``method``).
        real_mean: Mean children per real parent.
        synthetic_mean: Mean children per synthetic parent.
        real_zero_share: Share of real parents without children.
        synthetic_zero_share: Share of synthetic parents without children.
        method: ``"ks_children_per_parent"`` or ``"share_per_reference_parent"``.
        ks_score: ``1 - KS`` (always computed).
        share_score: Keys into reference tables only (else ``NaN``): ``1 - TVD`` between the
            real and synthetic shares of the child rows per reference row, plus one cell for
            the rows with no parent (null or unresolved key); the parents are the same rows on
            both sides, so each must keep its own share, not just the shape.
        ks_noise, share_noise: Mean ``1 - score`` of a perfect twin (multinomial draws of the
            real shares, same child count; reference keys only), the floor of each test.
    """

    score: float
    real_mean: float
    synthetic_mean: float
    real_zero_share: float
    synthetic_zero_share: float
    method: str = "ks_children_per_parent"
    ks_score: float = math.nan
    share_score: float = math.nan
    ks_noise: float = math.nan
    share_noise: float = math.nan


NOISE_DRAWS = 32
"""Multinomial draws of the real shares that estimate each cardinality test's noise floor."""


def _share_score(real_counts: np.ndarray, synthetic_counts: np.ndarray) -> float:
    """``1 - TVD`` of two count vectors over the same parents (``NaN`` if either is empty)."""
    rt, st = real_counts.sum(), synthetic_counts.sum()
    if rt <= 0 or st <= 0:
        return math.nan
    return 1.0 - 0.5 * float(np.abs(real_counts / rt - synthetic_counts / st).sum())


def _noise_floors(real_cells: np.ndarray, seed: int) -> tuple[float, float]:
    """Mean ``1 - score`` of the KS and the share test for twins drawn from the real shares.

    ``real_cells``: the real children per reference row, then the real child rows with no
    parent (a null or unresolved key). Twins are multinomial draws of as many rows as the
    real child table from those shares. A perfect twin of a key into few parents still reads
    a large KS (its resolution is one parent in ``k``: about 0.24 with 12 equally used
    parents), while the share test's noise grows with parents per child (about 0.1 with 3,000
    parents for 50,000 children). The test with the lower floor is the one that can tell a
    good twin from a bad one on this shape; the floors depend on the real data only, never on
    the twin scored.
    """
    rng = np.random.default_rng(seed)
    total = int(real_cells.sum())
    p = real_cells / total
    ks, share = [], []
    for _ in range(NOISE_DRAWS):
        draw = rng.multinomial(total, p).astype(float)
        ks.append(float(ks_2samp(real_cells[:-1], draw[:-1]).statistic))
        share.append(1.0 - _share_score(real_cells, draw))
    return float(np.mean(ks)), float(np.mean(share))


def evaluate_cardinality(
    *,
    group: TableGroup,
    real: Mapping[str, pd.DataFrame],
    synthetic: Mapping[str, pd.DataFrame],
    seed: int = 0,
) -> dict[str, CardinalityResult]:
    """Per relationship (``Relationship.key``): children-per-parent distribution fidelity.

    ``ks_score`` matches SDMetrics' ``CardinalityShapeSimilarity.compute_breakdown``
    (``sdmetrics.utils.get_cardinality_distribution`` and ``scipy.stats.ks_2samp``), and is
    the score of every key into a synthesized parent.

    A key into a reference table points at the same parent rows in the real data and in the
    twin, so its children per parent are also compared parent by parent (``1 - TVD`` of each
    row's share of the child rows, the rows without a parent as one more cell). Its gated
    score is whichever of the two tests has the lower noise floor on the
    real data (:func:`_noise_floors`, seeded by ``seed``): the share test for a few
    well-used parents (a 12-row lookup, where KS moves in steps of 1/12), KS for many
    sparsely used ones.
    """
    results = {}
    for r in group.relationships:
        parent_keys = real[r.parent][r.parent_column]
        rc = children_per_parent(parent_keys, real[r.child][r.child_column])
        sc = children_per_parent(
            synthetic[r.parent][r.parent_column], synthetic[r.child][r.child_column]
        )
        ks = 1.0 - float(ks_2samp(rc, sc).statistic) if rc.size and sc.size else math.nan
        extra: dict[str, Any] = {"ks_score": ks}
        score = ks
        if r.reference and rc.size and rc.sum() > 0:
            # Same parent rows on both sides: the twin's counts on the real keys, and a last
            # cell for the rows with no parent (null or unresolved keys), so that a twin
            # nulling its keys cannot keep perfect shares among the few it resolves.
            twin_child = synthetic[r.child][r.child_column]
            shares = children_per_parent(parent_keys, twin_child)
            real_cells = np.append(rc, len(real[r.child]) - rc.sum())
            twin_cells = np.append(shares, len(twin_child) - shares.sum())
            ks_noise, share_noise = _noise_floors(real_cells, seed)
            extra |= {
                "share_score": _share_score(real_cells, twin_cells),
                "ks_noise": ks_noise,
                "share_noise": share_noise,
            }
            if share_noise < ks_noise:
                extra["method"] = "share_per_reference_parent"
                score = extra["share_score"]
        results[r.key] = CardinalityResult(
            score=score,
            real_mean=float(rc.mean()) if rc.size else math.nan,
            synthetic_mean=float(sc.mean()) if sc.size else math.nan,
            real_zero_share=float((rc == 0).mean()) if rc.size else math.nan,
            synthetic_zero_share=float((sc == 0).mean()) if sc.size else math.nan,
            **extra,
        )
    return results


@dataclass(frozen=True)
class CrossTableTrends:
    """Column Pair Trends across one relationship's join (SDMetrics "Intertable Trends").

    Attributes:
        score: Mean score over every parent x child column pair with a defined score
            (SDMetrics' ``InterTableTrends``, whose thresholds are 0: every pair counts).
        counted_score: Mean over the pairs whose real data shows a trend (the single-table
            gate's thresholds: ``|r| > 0.5``, Cramer's V ``> 0.3``); ``NaN`` when none does.
        pairs: ``evaluate_fidelity``'s pair rows restricted to parent x child pairs; columns
            are prefixed ``<table>.``.
    """

    score: float
    counted_score: float
    pairs: pd.DataFrame = field(repr=False)


def _join(
    r: Relationship,
    frames: Mapping[str, pd.DataFrame],
    columns: Mapping[str, Sequence[str]],
) -> pd.DataFrame:
    child = frames[r.child][[r.child_column, *columns[r.child]]]
    parent = frames[r.parent][[r.parent_column, *columns[r.parent]]]
    child = child.rename(columns={c: f"{r.child}.{c}" for c in child.columns})
    parent = parent.rename(columns={c: f"{r.parent}.{c}" for c in parent.columns})
    return child.merge(
        parent, left_on=f"{r.child}.{r.child_column}", right_on=f"{r.parent}.{r.parent_column}"
    )


def evaluate_cross_table_trends(
    *,
    group: TableGroup,
    real: Mapping[str, pd.DataFrame],
    synthetic: Mapping[str, pd.DataFrame],
    tables: Mapping[str, TableMetadata],
    max_rows: int = 50_000,
    seed: int = 0,
    exclude: Collection[str] = (),
) -> dict[str, CrossTableTrends]:
    """Per relationship (``Relationship.key``): Column Pair Trends across the join.

    Each child is inner-joined to its parent on the key (in the real and in the synthetic
    data; orphans drop out, which :func:`evaluate_integrity` catches) and scored with
    :func:`synth_platform.lib.evaluation.evaluate_fidelity`; only pairs with one column from
    each side are kept, as in SDMetrics' multi-table ``InterTableTrends``. Key columns of the
    group and PII columns are left out.

    Args:
        tables: ``TableMetadata`` per table (its numeric/datetime/categorical lists).
        max_rows: Row cap for contingency tables (``evaluate_fidelity``).
        seed: Seed of that subsampling.
        exclude: Further ``"<table>.<column>"`` names to leave out.
    """
    results = {}
    for r in group.relationships:
        kinds: dict[str, list[str]] = {"numeric": [], "datetime": [], "categorical": []}
        columns: dict[str, list[str]] = {}
        sides: dict[str, str] = {}
        for table in (r.child, r.parent):
            meta = tables[table]
            keys = group.key_columns(table)
            columns[table] = []
            for kind, names in (
                ("numeric", meta.numeric),
                ("datetime", meta.datetime),
                ("categorical", meta.categorical),
            ):
                for c in names:
                    name = f"{table}.{c}"
                    if c in keys or c in meta.pii or name in exclude:
                        continue
                    kinds[kind].append(name)
                    columns[table].append(c)
                    sides[name] = table
        real_joined = _join(r, real, columns)
        synthetic_joined = _join(r, synthetic, columns)
        report = evaluate_fidelity(
            real=real_joined,
            synthetic=synthetic_joined,
            numeric=kinds["numeric"],
            datetime=kinds["datetime"],
            categorical=kinds["categorical"],
            max_rows=max_rows,
            seed=seed,
        )
        pairs = report.pairs
        cross = pairs["column_1"].map(sides) != pairs["column_2"].map(sides)
        pairs = pairs.loc[cross].reset_index(drop=True)
        scores = pairs["score"].to_numpy(dtype=float)
        counted = pairs["counted"].to_numpy(dtype=bool)
        defined = ~np.isnan(scores)
        results[r.key] = CrossTableTrends(
            score=float(scores[defined].mean()) if defined.any() else math.nan,
            counted_score=(
                float(scores[counted & defined].mean()) if (counted & defined).any() else math.nan
            ),
            pairs=pairs,
        )
    return results
