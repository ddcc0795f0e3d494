"""Deliberately defective synthesizers that the gates must block."""

from __future__ import annotations

import numpy as np
import pandas as pd


class LeakySynthesizer:
    """Returns real training rows: the privacy gate must block it."""

    def __init__(self, table: str, train: pd.DataFrame) -> None:
        self.table, self.train, self.pos = table, train.reset_index(drop=True), 0

    def reset_sampling(self) -> None:
        self.pos = 0

    def _set_random_state(self, seed: int) -> None:
        pass

    def sample(self, num_rows: int) -> dict[str, pd.DataFrame]:
        idx = (np.arange(self.pos, self.pos + num_rows)) % len(self.train)
        self.pos += num_rows
        return {self.table: self.train.iloc[idx].reset_index(drop=True)}

    def save(self, filepath: str) -> None:
        raise NotImplementedError


class NoiseSynthesizer:
    """Independent uniform noise per column, inside the real ranges and categories: the
    fidelity gate must block it."""

    def __init__(self, table: str, train: pd.DataFrame, key: str | None) -> None:
        self.table, self.key = table, key
        self.spec = {}
        for c in train.columns:
            s = train[c].dropna()
            if pd.api.types.is_bool_dtype(s) or s.dtype == object:
                self.spec[c] = ("choice", s.unique())
            elif pd.api.types.is_datetime64_any_dtype(s):
                self.spec[c] = ("time", (s.min().value, s.max().value))
            else:
                self.spec[c] = ("uniform", (float(s.min()), float(s.max())))
        self.rng = np.random.default_rng(0)
        self.next_key = 0

    def reset_sampling(self) -> None:
        self.next_key = 0

    def _set_random_state(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def sample(self, num_rows: int) -> dict[str, pd.DataFrame]:
        out = {}
        for c, (kind, arg) in self.spec.items():
            if c == self.key:
                out[c] = np.arange(self.next_key, self.next_key + num_rows)
            elif kind == "choice":
                out[c] = self.rng.choice(arg, num_rows)
            elif kind == "time":
                out[c] = pd.to_datetime(self.rng.integers(arg[0], arg[1], num_rows))
            else:
                out[c] = self.rng.uniform(arg[0], arg[1], num_rows)
        self.next_key += num_rows
        return {self.table: pd.DataFrame(out)}
