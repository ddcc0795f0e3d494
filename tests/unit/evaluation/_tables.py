"""Small seeded tables shared by the evaluation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

NUMERIC = ["age", "income", "score"]
DATETIME = ["signup"]
CATEGORICAL = ["segment", "region", "active", "churned"]


def mixed_table(n: int, seed: int, *, income_shift: float = 0.0) -> pd.DataFrame:
    """Numeric, datetime, categorical and boolean columns with nulls and correlated columns."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    age = (40 + 12 * latent + rng.normal(scale=4, size=n)).round()
    income = np.exp(10 + 0.5 * latent + rng.normal(scale=0.3, size=n)) + income_shift
    income[rng.random(n) < 0.1] = np.nan
    days = (latent * 300 + 1500 + rng.normal(scale=100, size=n)).astype(int)
    signup = pd.Series(pd.Timestamp("2015-01-01") + pd.to_timedelta(days, unit="D"))
    signup[rng.random(n) < 0.05] = pd.NaT
    segment = np.where(latent > 0.5, "gold", np.where(latent > -0.5, "silver", "bronze"))
    segment = segment.astype(object)
    flip = rng.random(n) < 0.2
    segment[flip] = rng.choice(["gold", "silver", "bronze", "tin"], size=flip.sum())
    segment[rng.random(n) < 0.05] = None
    churned = pd.Series(rng.random(n) < 0.3, dtype=object)
    churned[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "signup": signup,
            "segment": segment,
            "region": rng.choice(["n", "s", "e", "w"], size=n, p=[0.4, 0.3, 0.2, 0.1]),
            "active": (latent + rng.normal(scale=0.5, size=n)) > 0,
            "churned": churned,
            "score": rng.uniform(0, 100, size=n),
        }
    )


def sdmetrics_metadata(frame: pd.DataFrame) -> dict:
    """SDMetrics single-table metadata for a :func:`mixed_table` frame."""
    sdtypes = {name: "numerical" for name in NUMERIC}
    sdtypes |= {name: "datetime" for name in DATETIME}
    sdtypes |= {"segment": "categorical", "region": "categorical"}
    sdtypes |= {"active": "boolean", "churned": "boolean"}
    return {"columns": {name: {"sdtype": sdtypes[name]} for name in frame.columns}}
