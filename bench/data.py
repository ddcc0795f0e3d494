"""Deterministic benchmark tables: a wide mixed-type table and the demo bank tables.

The wide table mimics a customer-level warehouse extract: skewed and integer numeric columns
with nulls, datetimes, categoricals of several cardinalities with rare levels, and booleans,
all driven by a few latent factors so that column pairs carry real trends. A "synthetic"
version is the same generator under another seed with deliberate distortions (shifted and
noisier numeric columns, re-weighted categories, extra nulls), so that scores land in a
realistic range instead of at 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

N_NUMERIC = 26
N_DATETIME = 6
N_CATEGORICAL = 16
N_BOOLEAN = 8
N_COLUMNS = N_NUMERIC + N_DATETIME + N_CATEGORICAL + N_BOOLEAN  # 56
#: Widest table :func:`wide_table` makes: the kinds grow in the same proportions past 56.
MAX_COLUMNS = 200


def _kind_counts(n_columns: int) -> tuple[int, int, int, int]:
    """Numeric, datetime, categorical and boolean columns of a table ``n_columns`` wide: the
    56-column mix (its columns unchanged by a wider table), or that mix scaled up."""
    base = (N_NUMERIC, N_DATETIME, N_CATEGORICAL, N_BOOLEAN)
    if n_columns <= N_COLUMNS:
        return base
    counts = [max(b, int(b * n_columns / N_COLUMNS)) for b in base]
    counts[0] += n_columns - sum(counts)  # the rounding goes to the numeric columns
    return tuple(counts)  # type: ignore[return-value]


@dataclass(frozen=True)
class Columns:
    numeric: list[str]
    datetime: list[str]
    categorical: list[str]  # booleans included, as the evaluators expect

    def as_kwargs(self) -> dict[str, list[str]]:
        return {"numeric": self.numeric, "datetime": self.datetime, "categorical": self.categorical}

    def sdmetrics_metadata(self, booleans: set[str] | None = None) -> dict:
        booleans = booleans or set()
        columns = {c: {"sdtype": "numerical"} for c in self.numeric}
        columns |= {c: {"sdtype": "datetime"} for c in self.datetime}
        columns |= {
            c: {"sdtype": "boolean" if c in booleans else "categorical"} for c in self.categorical
        }
        return {"columns": columns}

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.datetime, *self.categorical]


def wide_columns(n_columns: int = N_COLUMNS) -> tuple[Columns, set[str]]:
    """Column lists of :func:`wide_table` (first ``n_columns`` of its columns)."""
    if not 0 < n_columns <= MAX_COLUMNS:
        raise ValueError(f"n_columns must be in 1..{MAX_COLUMNS}, not {n_columns}")
    names = _wide_names(n_columns)[:n_columns]
    numeric = [c for c in names if c.startswith("num_")]
    datetime = [c for c in names if c.startswith("dt_")]
    categorical = [c for c in names if c.startswith(("cat_", "flag_"))]
    booleans = {c for c in names if c.startswith("flag_")}
    return Columns(numeric, datetime, categorical), booleans


def _wide_names(n_columns: int = N_COLUMNS) -> list[str]:
    # Interleaved so that a prefix of the columns keeps every kind.
    n_num, n_dt, n_cat, n_bool = _kind_counts(n_columns)
    kinds = (
        [f"num_{i:02d}" for i in range(n_num)],
        [f"dt_{i}" for i in range(n_dt)],
        [f"cat_{i:02d}" for i in range(n_cat)],
        [f"flag_{i}" for i in range(n_bool)],
    )
    out: list[str] = []
    position = [0, 0, 0, 0]
    weights = [len(k) for k in kinds]
    while len(out) < sum(weights):
        # Pick the kind furthest behind its share.
        lag = [position[i] / weights[i] for i in range(4)]
        i = int(np.argmin(lag))
        out.append(kinds[i][position[i]])
        position[i] += 1
    return out


def wide_table(
    n_rows: int, seed: int, *, distort: bool = False, n_columns: int = N_COLUMNS
) -> pd.DataFrame:
    """A ``n_rows`` x ``n_columns`` mixed-type table, deterministic in ``seed``.

    Args:
        n_rows: Rows.
        seed: Seed of the generator.
        distort: Apply the "synthetic" distortions.
        n_columns: Keep the first ``n_columns`` columns (every kind stays represented); past
            56 (up to :data:`MAX_COLUMNS`), the kinds grow in proportion; the 56-column
            table's columns are among them with the same values, in another order.
    """
    if not 0 < n_columns <= MAX_COLUMNS:
        raise ValueError(f"n_columns must be in 1..{MAX_COLUMNS}, not {n_columns}")
    n_num, n_dt, n_cat, n_bool = _kind_counts(n_columns)
    rng = np.random.default_rng(seed)
    n_latent = 4
    latent = rng.standard_normal((n_rows, n_latent)).astype(np.float64)
    data: dict[str, object] = {}
    noise = 1.6 if distort else 1.0

    for i in range(n_num):
        column_rng = np.random.default_rng([seed, 1, i])
        weights = column_rng.normal(size=n_latent) * (0.9 if i % 3 else 0.2)
        x = latent @ weights + noise * column_rng.standard_normal(n_rows) * 0.6
        if distort and i % 5 == 0:
            x = x + 0.3  # location shift
        kind = i % 4
        if kind == 0:  # log-normal amounts (heavy right skew)
            values = np.round(np.exp(8 + 0.9 * x), 2)
        elif kind == 1:  # integer counts
            values = np.floor(np.exp(1.5 + 0.6 * x)).astype(np.float64)
        elif kind == 2:  # symmetric score
            values = 600 + 80 * x
        else:  # bounded ratio with a point mass at 0
            values = np.clip(1 / (1 + np.exp(-x)) - 0.2, 0, None)
        null_share = (0.0, 0.02, 0.1, 0.3)[i % 4] * (1.5 if distort else 1.0)
        values[column_rng.random(n_rows) < null_share] = np.nan
        if kind == 1 and null_share == 0:
            data[f"num_{i:02d}"] = values.astype(np.int64)
        else:
            data[f"num_{i:02d}"] = values

    base = np.datetime64("2015-01-01T00:00:00", "s").astype(np.int64)
    for i in range(n_dt):
        column_rng = np.random.default_rng([seed, 2, i])
        days = 1500 + 600 * latent[:, i % n_latent] + noise * column_rng.normal(0, 200, n_rows)
        seconds = base + (days * 86_400).astype(np.int64)
        if i % 2:  # dates only
            seconds = seconds - seconds % 86_400
        values = pd.Series(seconds.astype("datetime64[s]").astype("datetime64[ns]"))
        values[column_rng.random(n_rows) < (0.05 if i % 3 == 0 else 0.0)] = pd.NaT
        data[f"dt_{i}"] = values

    cardinalities = (3, 5, 8, 12, 25, 40, 60, 4)
    for i in range(n_cat):
        column_rng = np.random.default_rng([seed, 3, i])
        k = cardinalities[i % len(cardinalities)]
        # Zipf-like level frequencies: the tail levels are rare (< 0.5 %).
        levels = np.array([f"L{i:02d}_{j:02d}" for j in range(k)], dtype=object)
        logits = -1.2 * np.log1p(np.arange(k)) + (0.4 * column_rng.normal(size=k) if distort else 0)
        signal = latent[:, i % n_latent] * (1.5 if i % 2 == 0 else 0.3)
        # Latent shifts the level index: correlated categories.
        score = logits[None, :] + np.outer(signal, np.linspace(-1, 1, k))
        score += column_rng.gumbel(size=(n_rows, k))
        values = levels[score.argmax(axis=1)]
        values[column_rng.random(n_rows) < (0.03 if i % 4 == 1 else 0.0)] = None
        data[f"cat_{i:02d}"] = values

    for i in range(n_bool):
        column_rng = np.random.default_rng([seed, 4, i])
        p = 1 / (1 + np.exp(-(latent[:, i % n_latent] * 1.2 - (i % 3))))
        if distort:
            p = np.clip(p * 1.1, 0, 1)
        values = column_rng.random(n_rows) < p
        if i % 4 == 3:
            flags = values.astype(object)  # SDMetrics' DCR cannot take pandas' "boolean"
            flags[column_rng.random(n_rows) < 0.04] = None
            data[f"flag_{i}"] = flags
        else:
            data[f"flag_{i}"] = values

    names = _wide_names(n_columns)[:n_columns]
    return pd.DataFrame({name: data[name] for name in names})


# ------------------------------------------------------------------------------ demo bank

DEMO_COLUMNS: dict[str, tuple[Columns, set[str]]] = {
    "customers": (
        Columns(
            numeric=["annual_income", "credit_score"],
            datetime=["birth_date", "signup_date"],
            categorical=["segment", "region"],
        ),
        set(),
    ),
    "accounts": (
        Columns(
            numeric=["balance"], datetime=["opened_at"], categorical=["account_type", "status"]
        ),
        set(),
    ),
    "transactions": (
        Columns(
            numeric=["amount"],
            datetime=["occurred_at"],
            categorical=["merchant_category", "channel", "is_fraud"],
        ),
        {"is_fraud"},
    ),
}
"""Modelled columns of the demo tables (identifiers and PII left out, as the gate does)."""


def demo_tables(scale: float, seed: int) -> dict[str, pd.DataFrame]:
    """The demo bank at ``scale`` (1.0: ~1,000 customers, ~15,000 transactions)."""
    from bank_example.generator import DemoSize, generate_bank

    return generate_bank(size=DemoSize.from_scale(scale), seed=seed)


def transactions_like(n_rows: int, seed: int) -> pd.DataFrame:
    """A transactions-shaped table of exactly ``n_rows`` rows (resampled demo rows + jitter).

    Generating the demo bank at a million transactions takes minutes (Faker); this draws rows
    from a smaller demo bank and jitters amount and timestamp so that rows stay distinct.
    """
    columns, _ = DEMO_COLUMNS["transactions"]
    base = demo_tables(scale=4.0, seed=seed)["transactions"][columns.all]
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(base), size=n_rows)
    out = base.iloc[rows].reset_index(drop=True)
    out["amount"] = np.round(out["amount"].to_numpy() * rng.lognormal(0, 0.05, n_rows), 2)
    out["occurred_at"] = out["occurred_at"] + pd.to_timedelta(
        rng.integers(-3600, 3600, n_rows), unit="s"
    )
    return out
