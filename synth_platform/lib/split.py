"""Seeded, stable train/holdout split: a row's side depends only on its key and the seed."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def _row_hashes(df: pd.DataFrame, *, key: str | None, seed: int) -> np.ndarray:
    target = df[key] if key else df
    # pandas ignores `hash_key` for numeric columns, so the seed is mixed in afterwards.
    h = pd.util.hash_pandas_object(target, index=False).to_numpy(dtype=np.uint64)
    salt = np.uint64(int.from_bytes(hashlib.sha256(str(seed).encode()).digest()[:8], "little"))
    return pd.util.hash_array(h ^ salt)


def holdout_mask(df: pd.DataFrame, *, key: str | None, holdout: float, seed: int) -> np.ndarray:
    """True for the rows :func:`split_frame` holds out."""
    return _row_hashes(df, key=key, seed=seed) / np.float64(2**64) < holdout


def split_frame(
    df: pd.DataFrame, *, key: str | None, holdout: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into (train, holdout).

    The side of a row is a hash of its key (or of the whole row when there is no key) under
    the seed, so reruns put the same rows on the same side even if other rows are added or
    reordered, and holdout rows never reach a synthesizer.
    """
    mask = holdout_mask(df, key=key, holdout=holdout, seed=seed)
    return df.loc[~mask].reset_index(drop=True), df.loc[mask].reset_index(drop=True)


def fingerprint(df: pd.DataFrame) -> str:
    """Order-independent SHA-256 of a table's content and schema."""
    h = hashlib.sha256()
    h.update(",".join(f"{c}:{t}" for c, t in df.dtypes.astype(str).items()).encode())
    rows = np.sort(pd.util.hash_pandas_object(df, index=False).to_numpy())
    h.update(rows.tobytes())
    return h.hexdigest()
