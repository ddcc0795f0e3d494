"""Validity checks that follow SDMetrics' single-table ``DiagnosticReport``.

The two properties and their overall mean are computed the way SDMetrics (checked against
0.32) defines them:

* **Data Validity** - the mean of one score per column:

  * numeric and datetime columns: ``BoundaryAdherence``, the share of synthetic values that lie
    within ``[min, max]`` of the real column. When the real column has missing cells, missing
    synthetic cells are dropped first (missing is a valid value); when it has none, a missing
    synthetic cell counts as out of bounds.
  * categorical and boolean columns: ``CategoryAdherence``, the share of synthetic cells whose
    value occurs in the real column. Missing is treated as a category: a missing synthetic
    cell is valid exactly when the real column has missing cells.
  * the primary key: ``KeyUniqueness``, the share of synthetic rows whose key is neither
    missing nor a repeat of an earlier row's key (the number of distinct non-missing keys over
    the number of rows).

  Columns whose score is undefined (``NaN``, e.g. every synthetic cell missing) are skipped in
  the mean, as ``pandas.Series.mean`` does in SDMetrics.
* **Data Structure** - ``TableStructure``: ``|intersection| / |union|`` of the sets of
  ``(column name, dtype)`` pairs of the two tables, over all their columns (listed or not).
  SDMetrics compares dtypes as strings (``int64`` and ``float64`` differ) after converting
  datetime columns to ``datetime64``; the same is done here for the listed datetime columns.
* **Overall** - the mean of the two properties, ignoring a ``NaN`` property.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_platform.lib.evaluation._columns import (
    Kind,
    as_float,
    as_object,
    column_kinds,
    ordered_columns,
    require_columns,
)

__all__ = ["DiagnosticReport", "evaluate_diagnostic"]

_DETAIL_COLUMNS = ["column", "kind", "metric", "score"]


@dataclass(frozen=True)
class DiagnosticReport:
    """Validity and structure of a synthetic table relative to its real counterpart.

    Attributes:
        data_validity: Mean of the per-column scores in ``details`` (SDMetrics "Data
            Validity"); ``NaN`` when no column has a defined score.
        data_structure: ``TableStructure`` score (SDMetrics "Data Structure").
        overall: Mean of the two properties, ignoring a ``NaN`` property (as SDMetrics'
            ``DiagnosticReport.get_score``).
        details: One row per scored column, in the real table's column order: ``column``, ``kind`` (``numeric``/``datetime``/``categorical``/
            ``key``), ``metric`` (``BoundaryAdherence``/``CategoryAdherence``/
            ``KeyUniqueness``) and ``score``.
        boundary_adherence: Lowest ``BoundaryAdherence`` over numeric and datetime columns;
            ``None`` when there is no such column (or no defined score).
        category_adherence: Lowest ``CategoryAdherence`` over categorical columns; ``None``
            when there is none.
        key_uniqueness: ``KeyUniqueness`` of the primary key; ``None`` without a key.
        table_structure: The ``TableStructure`` score (equal to ``data_structure``).
    """

    data_validity: float
    data_structure: float
    overall: float
    details: pd.DataFrame
    boundary_adherence: float | None
    category_adherence: float | None
    key_uniqueness: float | None
    table_structure: float


def evaluate_diagnostic(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    numeric: Sequence[str],
    datetime: Sequence[str],
    categorical: Sequence[str],
    primary_key: str | None = None,
) -> DiagnosticReport:
    """Score whether ``synthetic`` holds valid values and the same columns as ``real``.

    Matches SDMetrics' ``DiagnosticReport`` (see the module docstring) for metadata in which the
    listed numeric, datetime and categorical/boolean columns have the sdtypes ``numerical``,
    ``datetime`` and ``categorical``/``boolean``, and ``primary_key`` has sdtype ``id``. Columns
    not listed are scored by neither property except through ``TableStructure`` (SDMetrics
    scores ``id`` columns that are not keys with no metric either). Metadata-defined ranges
    (``range_min`` and the like) and format metrics are not supported.

    Args:
        real: Real rows.
        synthetic: Synthetic rows.
        numeric: Numeric columns (booleans belong in ``categorical``).
        datetime: Datetime columns (datetime dtype, or strings that pandas can parse).
        categorical: Categorical and boolean columns.
        primary_key: The primary key column, scored by ``KeyUniqueness`` only; it must not be
            listed in ``numeric``, ``datetime`` or ``categorical``.

    Returns:
        The report.

    Raises:
        ValueError: If a column is listed twice or is missing from a table, or the primary key
            is also listed under a kind.
    """
    kinds = column_kinds(numeric=numeric, datetime=datetime, categorical=categorical)
    if primary_key is not None and primary_key in kinds:
        raise ValueError(
            f"primary key {primary_key!r} must not also be listed as {kinds[primary_key]}"
        )
    columns = ordered_columns(real, kinds)
    required = columns + ([primary_key] if primary_key is not None else [])
    require_columns({"real": real, "synthetic": synthetic}, required)

    position = {name: i for i, name in enumerate(real.columns)}
    rows: list[tuple[str, str, str, float]] = []
    for name in sorted(required, key=position.__getitem__):
        kind = kinds.get(name)
        if kind is None:
            rows.append((name, "key", "KeyUniqueness", _key_uniqueness(synthetic[name])))
        elif kind == "categorical":
            score = _category_adherence(real[name], synthetic[name])
            rows.append((name, kind, "CategoryAdherence", score))
        else:
            score = _boundary_adherence(real[name], synthetic[name], kind)
            rows.append((name, kind, "BoundaryAdherence", score))
    details = pd.DataFrame(rows, columns=_DETAIL_COLUMNS)
    details["score"] = details["score"].astype(float)

    scores = details["score"].to_numpy()
    defined = scores[~np.isnan(scores)]
    data_validity = float(defined.mean()) if defined.size else math.nan
    table_structure = _table_structure(real, synthetic, datetime)
    properties = [p for p in (data_validity, table_structure) if not math.isnan(p)]
    overall = float(np.mean(properties)) if properties else math.nan

    return DiagnosticReport(
        data_validity=data_validity,
        data_structure=table_structure,
        overall=overall,
        details=details,
        boundary_adherence=_lowest(details, "BoundaryAdherence"),
        category_adherence=_lowest(details, "CategoryAdherence"),
        key_uniqueness=_lowest(details, "KeyUniqueness"),
        table_structure=table_structure,
    )


def _lowest(details: pd.DataFrame, metric: str) -> float | None:
    scores = details.loc[details["metric"] == metric, "score"].dropna()
    return float(scores.min()) if len(scores) else None


def _boundary_adherence(real: pd.Series, synthetic: pd.Series, kind: Kind) -> float:
    """SDMetrics ``BoundaryAdherence`` with bounds from the real column."""
    real_values = as_float(real, kind)
    synthetic_values = as_float(synthetic, kind)
    real_missing = np.isnan(real_values)
    if real_missing.any():
        synthetic_values = synthetic_values[~np.isnan(synthetic_values)]
    if synthetic_values.size == 0:
        return math.nan
    present = real_values[~real_missing]
    if present.size == 0:
        return 0.0
    lo, hi = present.min(), present.max()
    # NaN compares False, so a missing synthetic cell left in counts as out of bounds.
    inside = (synthetic_values >= lo) & (synthetic_values <= hi)
    return float(inside.mean())


def _category_adherence(real: pd.Series, synthetic: pd.Series) -> float:
    """SDMetrics ``CategoryAdherence`` with the categories of the real column."""
    if len(synthetic) == 0:
        return math.nan
    real_values = as_object(real)
    synthetic_values = as_object(synthetic)
    real_missing = pd.isna(real_values)
    synthetic_missing = pd.isna(synthetic_values)
    observed = pd.Index(pd.unique(real_values[~real_missing]))
    valid = observed.get_indexer(synthetic_values) >= 0
    valid &= ~synthetic_missing
    if real_missing.any():
        valid |= synthetic_missing
    return float(valid.mean())


def _key_uniqueness(synthetic: pd.Series) -> float:
    """SDMetrics ``KeyUniqueness``: 1 minus the share of missing or repeated keys."""
    if len(synthetic) == 0:
        return math.nan
    values = synthetic.to_numpy(dtype=object)
    present = values[~pd.isna(values)]
    return float(len(pd.unique(present)) / len(values))


def _table_structure(real: pd.DataFrame, synthetic: pd.DataFrame, datetime: Sequence[str]) -> float:
    """SDMetrics ``TableStructure`` over ``(column, dtype)`` pairs."""

    def signature(frame: pd.DataFrame) -> set[tuple[object, str]]:
        out = set()
        for name, dtype in zip(frame.columns, frame.dtypes, strict=True):
            if name in datetime and not pd.api.types.is_datetime64_any_dtype(dtype):
                dtype = np.dtype("datetime64[ns]")
            out.add((name, str(dtype)))
        return out

    real_signature, synthetic_signature = signature(real), signature(synthetic)
    union = real_signature | synthetic_signature
    if not union:
        return math.nan
    return len(real_signature & synthetic_signature) / len(union)
