"""Column coercion shared by the fidelity and privacy engines.

Every evaluator works on plain NumPy arrays: numeric and datetime columns become ``float64``
(datetimes as nanoseconds since the epoch, missing as ``NaN``) and categorical columns become
``object`` arrays whose missing cells are ``None``-like. These helpers are private to the
``synth_platform.lib.evaluation`` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["numeric", "datetime", "categorical"]


def column_kinds(
    *, numeric: Sequence[str], datetime: Sequence[str], categorical: Sequence[str]
) -> dict[str, Kind]:
    """Map each listed column to its kind, rejecting a column listed twice.

    Args:
        numeric: Numeric column names.
        datetime: Datetime column names.
        categorical: Categorical and boolean column names.

    Returns:
        Column name to kind, in the order numeric, datetime, categorical.

    Raises:
        ValueError: If a column appears in more than one list (or twice in one).
    """
    kinds: dict[str, Kind] = {}
    for kind, names in (("numeric", numeric), ("datetime", datetime), ("categorical", categorical)):
        for name in names:
            if name in kinds:
                raise ValueError(f"column {name!r} is listed more than once")
            kinds[name] = kind  # type: ignore[assignment]
    return kinds


def ordered_columns(frame: pd.DataFrame, kinds: dict[str, Kind]) -> list[str]:
    """Return the listed columns in the frame's own column order (unknown ones at the end)."""
    position = {name: i for i, name in enumerate(frame.columns)}
    return sorted(kinds, key=lambda name: position.get(name, len(position)))


def require_columns(frames: dict[str, pd.DataFrame], columns: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the first frame that lacks any of ``columns``."""
    for label, frame in frames.items():
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{label} data lacks column(s) {missing}")


def datetime_ns(series: pd.Series) -> np.ndarray:
    """Return a datetime-like column as int64 nanoseconds since the epoch (NaT kept as NaT int).

    Strings are parsed with :func:`pandas.to_datetime` (unparseable values become missing);
    timezone-aware values are converted to UTC first.

    Args:
        series: The column.

    Returns:
        An ``int64`` array; missing cells hold ``numpy.iinfo(numpy.int64).min`` (NaT).
    """
    if not pd.api.types.is_datetime64_any_dtype(series):
        series = pd.to_datetime(series, errors="coerce", format="mixed")
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.to_numpy(dtype="datetime64[ns]").view("int64")


def as_float(series: pd.Series, kind: Kind) -> np.ndarray:
    """Return a numeric or datetime column as ``float64`` with missing cells as ``NaN``.

    Args:
        series: The column.
        kind: ``"numeric"`` or ``"datetime"`` (datetimes become nanoseconds since the epoch).

    Returns:
        A new ``float64`` array.
    """
    if kind == "datetime":
        ns = datetime_ns(series)
        out = ns.astype(np.float64)
        out[ns == np.iinfo(np.int64).min] = np.nan
        return out
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        series = pd.to_numeric(series, errors="coerce")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def as_object(series: pd.Series) -> np.ndarray:
    """Return a categorical/boolean column as an ``object`` array (missing cells stay NA)."""
    return series.to_numpy(dtype=object)


def factorize_joint(*arrays: np.ndarray) -> tuple[list[np.ndarray], int, bool]:
    """Factorize several object arrays against one shared category table.

    Missing values (``None``, ``NaN``, ``NaT``, ``pd.NA``) become one extra category whose code
    is the number of non-missing categories.

    Args:
        *arrays: Object arrays to encode together.

    Returns:
        The code arrays (``int64``, same order), the number of codes including the missing
        code, and whether any value was missing.
    """
    joined = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    codes, uniques = pd.factorize(joined, use_na_sentinel=True)
    n_values = len(uniques)
    missing = codes < 0
    has_missing = bool(missing.any())
    codes = codes.astype(np.int64, copy=False)
    if has_missing:
        codes = np.where(missing, n_values, codes)
    out: list[np.ndarray] = []
    start = 0
    for array in arrays:
        out.append(codes[start : start + len(array)])
        start += len(array)
    return out, n_values + 1, has_missing
