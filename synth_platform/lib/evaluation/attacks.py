"""Anonymeter-style privacy attacks on a synthetic table: singling out, linkability, inference.

The methodology is that of Giomi et al. (2022), "A Unified Framework for Quantifying Privacy
Risk in Synthetic Data" (the ``anonymeter`` package, which is not a dependency): an attacker
holding the synthetic table attacks real records. Each attack is run three times:

* against records of the **train** table (the synthesizer's input): ``attack_rate``;
* against records of the **holdout** table (never seen by the synthesizer): ``control_rate``,
  the success explained by what the synthetic data teaches about the population in general;
* as a naive **baseline** that guesses at random: ``baseline_rate``. An attack that does not
  beat its baseline says little (anonymeter warns "results cannot be trusted").

The privacy risk is the part of the attack's success on train records that the control
attack does not explain, ``(attack - control) / (1 - control)``, clipped to ``[0, 1]``.
Following anonymeter's ``stats.confidence``, every rate is estimated by the Wilson score
interval at 95% (its centre is the point estimate that enters the risk; the ``*_rate`` fields
hold the raw shares), and the risk's interval is its point estimate plus or minus the error
propagated from both rates' half-widths (``dR = sqrt((dA / (1 - c))^2 + (dC (1 - a) /
(1 - c)^2)^2)``), each end clipped to ``[0, 1]``.

The attacks:

* **Singling out** (anonymeter's univariate mode). Predicates are read off the synthetic
  rows: ``column == v`` for every value ``v`` held by exactly one synthetic row,
  ``column <= min`` and ``column >= max`` for numeric and datetime columns whose synthetic
  extreme is held by one row, and ``column is missing`` where exactly one synthetic cell is
  missing. ``n_attacks`` of them are drawn at random; a predicate succeeds when it matches
  exactly one record of the attacked table. Train and holdout are both subsampled to the same
  number of rows, since a predicate's chance to single out depends on the table size
  (anonymeter fits a size-correction curve instead). Baseline: ``n_attacks`` random predicates,
  each on a random column with a random synthetic value (or "missing") and a random operator
  (``==, !=, <, <=, >, >=`` for numeric/datetime, ``==, !=`` for categorical, "is missing"/"is
  present" for a missing value).
* **Linkability**. The columns are split into two sets (``link_columns``; by default the
  listed columns alternately). For a target record, the attacker finds its ``n_neighbors``
  nearest synthetic rows on each set separately; the attack succeeds when the two neighbour
  sets share a row (the two halves are linked). Baseline: two random neighbour sets.
* **Inference**, once per secret column. The attacker knows every other listed column of the
  target and guesses the secret as the value of its nearest synthetic row on those columns.
  A guess is right when it equals the secret for categorical columns (missing equals missing),
  and when ``|guess - secret| <= tolerance * |secret|`` for numeric columns (anonymeter divides
  by the guess instead) or ``|guess - secret| <= tolerance * range`` for datetime columns
  (``range`` of the real rows; a relative error on epoch nanoseconds means nothing). Baseline:
  the secret of a random synthetic row.

Distances are those of :mod:`synth_platform.lib.evaluation.privacy` (SDMetrics'
``calculate_dcr``): per column, numeric and datetime ``min(|a - b| / range, 1)`` with the range
of all real rows (train and holdout), categorical 0 or 1 (missing is a category), missing
against present 1, two missing 0; summed over the columns used. The search is an exact blocked
brute force (the neighbour indices are needed, which ``privacy``'s engine does not return);
exact ties are broken uniformly at random, independently for each search, so that tied
candidates do not fake a link by both resolving to the first row.

Bounds: ``n_attacks`` target records from each of train and holdout (one shared set of targets
serves linkability and every inference secret), at most ``max_synthetic_rows`` synthetic rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from synth_platform.lib.evaluation._columns import (
    Kind,
    as_float,
    as_object,
    column_kinds,
    factorize_joint,
    ordered_columns,
    require_columns,
)

__all__ = ["AttackReport", "AttackResult", "evaluate_attacks"]

_CONFIDENCE = 0.95
_Z = float(norm.ppf(0.5 * (1.0 + _CONFIDENCE)))
_MISSING_SCALED = 10.0  # scaled stand-in for a missing numeric cell: >= 1 away from [-1, 2]
_BLOCK_ELEMENTS = 1 << 20  # distance-matrix cells per block (8 MiB of float64)
_TIE_NOISE = 1e-9  # random tie-breaker added to distances (sums of values in [0, 1])

# Predicate operators for singling out.
_EQ, _NE, _LT, _LE, _GT, _GE, _NA, _PRESENT = range(8)
_CONTINUOUS_OPERATORS = np.array([_EQ, _NE, _LT, _LE, _GT, _GE])
_CATEGORICAL_OPERATORS = np.array([_EQ, _NE])


@dataclass(frozen=True)
class AttackResult:
    """Success rates of one attack and the privacy risk derived from them.

    Attributes:
        attack: ``"singling_out"``, ``"linkability"`` or ``"inference"``.
        secret: The secret column of an inference attack; ``None`` otherwise.
        n_attacks: Attacks run against each of train, holdout and the baseline.
        attack_rate: Share of successful attacks on train records.
        attack_ci: 95% Wilson interval of the attack success rate.
        control_rate: Share of successful attacks on holdout records.
        control_ci: 95% Wilson interval of the control success rate.
        baseline_rate: Share of successful random-guess attacks on train records.
        baseline_ci: 95% Wilson interval of the baseline success rate.
        risk: ``(attack - control) / (1 - control)`` on the Wilson centres, clipped to [0, 1].
        risk_ci: The risk plus or minus its propagated error, each end clipped to [0, 1].
    """

    attack: str
    secret: str | None
    n_attacks: int
    attack_rate: float
    attack_ci: tuple[float, float]
    control_rate: float
    control_ci: tuple[float, float]
    baseline_rate: float
    baseline_ci: tuple[float, float]
    risk: float
    risk_ci: tuple[float, float]

    @property
    def beats_baseline(self) -> bool:
        """Whether the attack beat random guessing (anonymeter's sanity check)."""
        return (
            _wilson(self.attack_rate, self.n_attacks)[0]
            > _wilson(self.baseline_rate, self.n_attacks)[0]
        )


@dataclass(frozen=True)
class AttackReport:
    """Results of the three attacks against one synthetic table.

    Attributes:
        singling_out: The univariate singling-out attack.
        linkability: The linkability attack.
        inference: One inference attack per secret column, in column order.
        max_risk: The largest ``risk`` over all attacks.
        link_columns: The two column sets of the linkability attack.
        n_synthetic: Synthetic rows the attacker used (after subsampling).
        n_reference: Rows of train, and of holdout, that singling-out predicates were
            evaluated on.
    """

    singling_out: AttackResult
    linkability: AttackResult
    inference: dict[str, AttackResult]
    max_risk: float
    link_columns: tuple[tuple[str, ...], tuple[str, ...]]
    n_synthetic: int
    n_reference: int


def evaluate_attacks(
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    numeric: Sequence[str],
    datetime: Sequence[str],
    categorical: Sequence[str],
    secrets: Sequence[str] | None = None,
    n_attacks: int = 500,
    seed: int = 0,
    link_columns: tuple[Sequence[str], Sequence[str]] | None = None,
    n_neighbors: int = 1,
    tolerance: float = 0.05,
    max_synthetic_rows: int = 50_000,
) -> AttackReport:
    """Run singling-out, linkability and inference attacks (see the module docstring).

    Args:
        train: Real rows the synthesizer was trained on (the attacked records).
        holdout: Real rows it never saw (the control records).
        synthetic: Synthetic rows, all known to the attacker.
        numeric: Numeric columns (booleans belong in ``categorical``).
        datetime: Datetime columns (datetime dtype, or strings that pandas can parse).
        categorical: Categorical and boolean columns.
        secrets: Columns to run an inference attack on; ``None`` means every listed column.
            Each secret costs one more pass over the synthetic rows.
        n_attacks: Target records (and predicates) per attack, capped by the table sizes.
        seed: Seed for every sample and random choice; the report is deterministic.
        link_columns: The attacker's two column sets for linkability; by default the listed
            columns in table order, alternately assigned to the first and the second set.
        n_neighbors: Neighbours per column set in the linkability attack.
        tolerance: Relative tolerance of a numeric or datetime inference guess.
        max_synthetic_rows: Cap on the synthetic rows the attacker uses (sampled, seeded).

    Returns:
        The report.

    Raises:
        ValueError: If fewer than two columns are listed, a column is listed twice or is
            missing from a table, a table is empty, a secret or link column is not listed, the
            link sets are empty or overlap, or a count parameter is below 1.
    """
    for name, value in (
        ("n_attacks", n_attacks),
        ("n_neighbors", n_neighbors),
        ("max_synthetic_rows", max_synthetic_rows),
    ):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    kinds = column_kinds(numeric=numeric, datetime=datetime, categorical=categorical)
    columns = ordered_columns(train, kinds)
    if len(columns) < 2:
        raise ValueError("the attacks need at least two listed columns")
    frames = {"train": train, "holdout": holdout, "synthetic": synthetic}
    require_columns(frames, columns)
    for label, frame in frames.items():
        if len(frame) == 0:
            raise ValueError(f"{label} data has no rows")
    secret_columns = list(columns if secrets is None else secrets)
    for name in secret_columns:
        if name not in kinds:
            raise ValueError(f"secret {name!r} is not a listed column")
    if link_columns is None:
        link_a, link_b = tuple(columns[0::2]), tuple(columns[1::2])
    else:
        link_a, link_b = tuple(link_columns[0]), tuple(link_columns[1])
        if not link_a or not link_b:
            raise ValueError("both link column sets must be non-empty")
        if set(link_a) & set(link_b):
            raise ValueError(f"link column sets overlap: {sorted(set(link_a) & set(link_b))}")
        for name in (*link_a, *link_b):
            if name not in kinds:
                raise ValueError(f"link column {name!r} is not a listed column")

    rng = np.random.default_rng(seed)
    encoded = _Encoded.build(frames, columns, kinds, rng, max_synthetic_rows)

    # Singling out: predicates from the synthetic rows, on equal-size train/holdout samples.
    n_reference = min(len(train), len(holdout))
    train_reference = _sample(len(train), n_reference, rng)
    holdout_reference = _sample(len(holdout), n_reference, rng)
    predicates = _singling_out_predicates(encoded, n_attacks, rng)
    random_predicates = _random_predicates(encoded, predicates.size, rng)
    singling_out = _result(
        "singling_out",
        None,
        n=predicates.size,
        attack=int((encoded.count("train", train_reference, predicates) == 1).sum()),
        control=int((encoded.count("holdout", holdout_reference, predicates) == 1).sum()),
        baseline=int((encoded.count("train", train_reference, random_predicates) == 1).sum()),
    )

    # Linkability and inference share one set of target records and one pass of searches.
    n_targets = min(n_attacks, len(train), len(holdout))
    targets = {
        "train": _sample(len(train), n_targets, rng, sort=False),
        "holdout": _sample(len(holdout), n_targets, rng, sort=False),
    }
    position = {name: j for j, name in enumerate(columns)}
    group_a = np.array([position[c] for c in link_a])
    group_b = np.array([position[c] for c in link_b])
    secret_index = [position[c] for c in secret_columns]
    search = _Search(encoded, rng)
    found = {
        label: search.run(label, rows, group_a, group_b, secret_index, n_neighbors)
        for label, rows in targets.items()
    }
    n_synthetic = encoded.n_synthetic

    linked = {label: _linked(a, b) for label, (a, b, _) in found.items()}
    random_a = rng.integers(0, n_synthetic, size=(n_targets, n_neighbors))
    random_b = rng.integers(0, n_synthetic, size=(n_targets, n_neighbors))
    linkability = _result(
        "linkability",
        None,
        n=n_targets,
        attack=int(linked["train"].sum()),
        control=int(linked["holdout"].sum()),
        baseline=int(_linked(random_a, random_b).sum()),
    )

    inference: dict[str, AttackResult] = {}
    for i, name in enumerate(secret_columns):
        j = position[name]
        guesses_random = rng.integers(0, n_synthetic, size=n_targets)
        correct = {
            label: encoded.correct(j, label, targets[label], found[label][2][:, i], tolerance)
            for label in targets
        }
        baseline = encoded.correct(j, "train", targets["train"], guesses_random, tolerance)
        inference[name] = _result(
            "inference",
            name,
            n=n_targets,
            attack=int(correct["train"].sum()),
            control=int(correct["holdout"].sum()),
            baseline=int(baseline.sum()),
        )

    risks = [singling_out.risk, linkability.risk, *(r.risk for r in inference.values())]
    return AttackReport(
        singling_out=singling_out,
        linkability=linkability,
        inference=inference,
        max_risk=float(max(risks)),
        link_columns=(link_a, link_b),
        n_synthetic=n_synthetic,
        n_reference=n_reference,
    )


# --------------------------------------------------------------------------- statistics


def _wilson(rate: float, n: int) -> tuple[float, float]:
    """Wilson centre and half-width (anonymeter's ``success_rate``) from a raw share."""
    if n == 0:
        return math.nan, math.nan
    successes = rate * n
    z2 = _Z * _Z
    denominator = n + z2
    centre = (successes + 0.5 * z2) / denominator
    error = (_Z / denominator) * math.sqrt(successes * (n - successes) / n + 0.25 * z2)
    return centre, error


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _interval(rate: float, n: int) -> tuple[float, float]:
    centre, error = _wilson(rate, n)
    return _clip(centre - error), _clip(centre + error)


def _result(
    kind: str, secret: str | None, *, n: int, attack: int, control: int, baseline: int
) -> AttackResult:
    """Rates, Wilson intervals and the anonymeter residual risk from success counts."""
    if n == 0:
        nan_pair = (math.nan, math.nan)
        return AttackResult(
            kind,
            secret,
            0,
            math.nan,
            nan_pair,
            math.nan,
            nan_pair,
            math.nan,
            nan_pair,
            math.nan,
            nan_pair,
        )
    attack_rate, control_rate, baseline_rate = attack / n, control / n, baseline / n
    a, da = _wilson(attack_rate, n)
    c, dc = _wilson(control_rate, n)
    residual = (a - c) / (1.0 - c)
    error = math.hypot(da / abs(1.0 - c), dc * (a - 1.0) / (1.0 - c) ** 2)
    return AttackResult(
        attack=kind,
        secret=secret,
        n_attacks=n,
        attack_rate=attack_rate,
        attack_ci=_interval(attack_rate, n),
        control_rate=control_rate,
        control_ci=_interval(control_rate, n),
        baseline_rate=baseline_rate,
        baseline_ci=_interval(baseline_rate, n),
        risk=_clip(residual),
        risk_ci=(_clip(residual - error), _clip(residual + error)),
    )


# ----------------------------------------------------------------------------- encoding


def _sample(n_rows: int, size: int, rng: np.random.Generator, *, sort: bool = True) -> np.ndarray:
    if n_rows <= size:
        return np.arange(n_rows)
    rows = rng.choice(n_rows, size=size, replace=False)
    return np.sort(rows) if sort else rows


class _Encoded:
    """Every listed column of train, holdout and (sampled) synthetic as ``float64`` arrays.

    Numeric and datetime columns hold their values (datetimes in ns), categorical columns the
    codes of one shared category table; missing cells are ``NaN`` in both. ``scaled`` holds the
    distance form of each column: range-normalised and clipped to ``[-1, 2]`` for numeric and
    datetime columns (missing as ``_MISSING_SCALED``), codes with missing as its own code for
    categorical columns.
    """

    def __init__(
        self,
        kinds: list[Kind],
        values: dict[str, list[np.ndarray]],
        scaled: dict[str, list[np.ndarray]],
        spans: list[float],
    ) -> None:
        self.kinds = kinds
        self.values = values
        self.scaled = scaled
        self.spans = spans
        self.n_synthetic = values["synthetic"][0].size

    @classmethod
    def build(
        cls,
        frames: dict[str, pd.DataFrame],
        columns: list[str],
        kinds: dict[str, Kind],
        rng: np.random.Generator,
        max_synthetic_rows: int,
    ) -> _Encoded:
        synthetic_rows = _sample(len(frames["synthetic"]), max_synthetic_rows, rng)
        rows = {
            "train": slice(None),
            "holdout": slice(None),
            "synthetic": synthetic_rows,
        }
        values: dict[str, list[np.ndarray]] = {label: [] for label in frames}
        scaled: dict[str, list[np.ndarray]] = {label: [] for label in frames}
        spans: list[float] = []
        for name in columns:
            kind = kinds[name]
            if kind == "categorical":
                raw = [as_object(frames[label][name])[rows[label]] for label in frames]
                codes, n_codes, _ = factorize_joint(*raw)
                missing_code = n_codes - 1
                for label, code in zip(frames, codes, strict=True):
                    scaled[label].append(code.astype(np.float64))
                    values[label].append(np.where(code == missing_code, np.nan, code).astype(float))
                spans.append(math.nan)
                continue
            for label in frames:
                values[label].append(as_float(frames[label][name], kind)[rows[label]])
            real = np.concatenate([values["train"][-1], values["holdout"][-1]])
            present = real[~np.isnan(real)]
            lo = float(present.min()) if present.size else 0.0
            span = float(present.max() - lo) if present.size else math.nan
            spans.append(span)
            for label in frames:
                column = values[label][-1]
                with np.errstate(invalid="ignore", over="ignore"):
                    if span > 0:
                        form = (column - lo) / span
                    elif span == 0:
                        # Real values are all ``lo``: any other value is at distance 1.
                        form = np.where(column == lo, 0.0, 2.0)
                    else:
                        form = np.zeros_like(column)
                form = np.clip(form, -1.0, 2.0)
                scaled[label].append(np.where(np.isnan(column), _MISSING_SCALED, form))
        return cls([kinds[c] for c in columns], values, scaled, spans)

    def count(self, label: str, rows: np.ndarray, predicates: _Predicates) -> np.ndarray:
        """Number of the given rows of a table that each predicate matches."""
        counts = np.zeros(predicates.size, dtype=np.int64)
        for j in np.unique(predicates.column):
            chosen = np.flatnonzero(predicates.column == j)
            column = self.values[label][j][rows]
            missing = np.isnan(column)
            present = np.sort(column[~missing])
            n_present, n_missing = present.size, int(missing.sum())
            value, operator = predicates.value[chosen], predicates.operator[chosen]
            left = np.searchsorted(present, value, side="left")
            right = np.searchsorted(present, value, side="right")
            by_operator = {
                _EQ: right - left,
                _NE: n_present - (right - left),
                _LT: left,
                _LE: right,
                _GT: n_present - right,
                _GE: n_present - left,
                _NA: np.full(chosen.size, n_missing),
                _PRESENT: np.full(chosen.size, n_present),
            }
            counts[chosen] = np.select(
                [operator == op for op in by_operator], list(by_operator.values())
            )
        return counts

    def correct(
        self,
        j: int,
        label: str,
        target_rows: np.ndarray,
        guess_rows: np.ndarray,
        tolerance: float,
    ) -> np.ndarray:
        """Whether each inference guess of column ``j`` is right (see the module docstring)."""
        secret = self.values[label][j][target_rows]
        guess = self.values["synthetic"][j][guess_rows]
        both_missing = np.isnan(secret) & np.isnan(guess)
        kind = self.kinds[j]
        with np.errstate(invalid="ignore"):
            if kind == "categorical":
                match = secret == guess
            elif kind == "numeric":
                match = np.abs(guess - secret) <= tolerance * np.abs(secret)
            else:
                match = np.abs(guess - secret) <= tolerance * self.spans[j]
        return both_missing | match


# ------------------------------------------------------------------------ singling out


@dataclass(frozen=True)
class _Predicates:
    """Univariate predicates ``column <operator> value`` (values in the encoded form)."""

    column: np.ndarray
    operator: np.ndarray
    value: np.ndarray

    @property
    def size(self) -> int:
        return int(self.column.size)


def _singling_out_predicates(
    encoded: _Encoded, n_attacks: int, rng: np.random.Generator
) -> _Predicates:
    """Anonymeter's univariate queries: predicates matching exactly one synthetic row."""
    columns, operators, values = [], [], []
    for j, kind in enumerate(encoded.kinds):
        column = encoded.values["synthetic"][j]
        missing = np.isnan(column)
        unique, counts = np.unique(column[~missing], return_counts=True)
        rare = unique[counts == 1]
        parts = [(np.full(rare.size, _EQ), rare)]
        if kind != "categorical" and unique.size:
            if counts[0] == 1:
                parts.append((np.array([_LE]), unique[:1]))
            if counts[-1] == 1:
                parts.append((np.array([_GE]), unique[-1:]))
        if int(missing.sum()) == 1:
            parts.append((np.array([_NA]), np.array([np.nan])))
        for operator, value in parts:
            columns.append(np.full(value.size, j))
            operators.append(operator)
            values.append(value)
    column = np.concatenate(columns)
    chosen = np.sort(rng.choice(column.size, size=min(n_attacks, column.size), replace=False))
    return _Predicates(
        column[chosen], np.concatenate(operators)[chosen], np.concatenate(values)[chosen]
    )


def _random_predicates(encoded: _Encoded, n: int, rng: np.random.Generator) -> _Predicates:
    """Anonymeter's baseline: random column, random synthetic value, random operator."""
    candidates = []
    for j in range(len(encoded.kinds)):
        column = encoded.values["synthetic"][j]
        unique = np.unique(column[~np.isnan(column)])
        candidates.append(np.append(unique, np.nan) if np.isnan(column).any() else unique)
    column = rng.integers(0, len(encoded.kinds), size=n)
    operator = np.empty(n, dtype=np.int64)
    value = np.empty(n)
    for i, j in enumerate(column):
        value[i] = candidates[j][rng.integers(0, candidates[j].size)]
        if np.isnan(value[i]):
            operator[i] = rng.choice([_NA, _PRESENT])
        elif encoded.kinds[j] == "categorical":
            operator[i] = rng.choice(_CATEGORICAL_OPERATORS)
        else:
            operator[i] = rng.choice(_CONTINUOUS_OPERATORS)
    return _Predicates(column, operator, value)


# ------------------------------------------------------------------- neighbour search


class _Search:
    """Exact blocked brute-force nearest synthetic rows for linkability and inference."""

    def __init__(self, encoded: _Encoded, rng: np.random.Generator) -> None:
        self._encoded = encoded
        self._rng = rng

    def _distance(self, j: int, query: np.ndarray) -> np.ndarray:
        reference = self._encoded.scaled["synthetic"][j]
        if self._encoded.kinds[j] == "categorical":
            return (query[:, None] != reference[None, :]).astype(np.float64)
        out = np.abs(query[:, None] - reference[None, :])
        return np.minimum(out, 1.0, out=out)

    def run(
        self,
        label: str,
        rows: np.ndarray,
        group_a: np.ndarray,
        group_b: np.ndarray,
        secrets: list[int],
        k: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Neighbours of the target rows of one table.

        Returns:
            The ``k`` nearest synthetic rows on the first and on the second link column set
            (two ``(targets, k)`` arrays), and per secret the nearest synthetic row on every
            other column (``(targets, secrets)``).
        """
        encoded = self._encoded
        n_synthetic = encoded.n_synthetic
        k = min(k, n_synthetic)
        n_columns = len(encoded.kinds)
        queries = [encoded.scaled[label][j][rows] for j in range(n_columns)]
        noise_a, noise_b = (self._rng.random(n_synthetic) * _TIE_NOISE for _ in range(2))
        noise_secret = [self._rng.random(n_synthetic) * _TIE_NOISE for _ in secrets]
        in_a = np.isin(np.arange(n_columns), group_a)
        in_b = np.isin(np.arange(n_columns), group_b)
        out_a = np.empty((rows.size, k), dtype=np.int64)
        out_b = np.empty((rows.size, k), dtype=np.int64)
        guesses = np.empty((rows.size, len(secrets)), dtype=np.int64)
        block = max(1, _BLOCK_ELEMENTS // n_synthetic)
        for start in range(0, rows.size, block):
            stop = min(start + block, rows.size)
            total = np.zeros((stop - start, n_synthetic))
            sum_a = np.zeros_like(total)
            sum_b = np.zeros_like(total)
            for j in range(n_columns):
                distance = self._distance(j, queries[j][start:stop])
                total += distance
                if in_a[j]:
                    sum_a += distance
                elif in_b[j]:
                    sum_b += distance
            out_a[start:stop] = _smallest(sum_a + noise_a, k)
            out_b[start:stop] = _smallest(sum_b + noise_b, k)
            for i, j in enumerate(secrets):
                aux = total - self._distance(j, queries[j][start:stop])
                aux += noise_secret[i]
                guesses[start:stop, i] = np.argmin(aux, axis=1)
        return out_a, out_b, guesses


def _smallest(distances: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` smallest entries of each row (in no particular order)."""
    if k == 1:
        return np.argmin(distances, axis=1)[:, None]
    if k >= distances.shape[1]:
        return np.tile(np.arange(distances.shape[1]), (distances.shape[0], 1))
    return np.argpartition(distances, k - 1, axis=1)[:, :k]


def _linked(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether each row's neighbour sets ``a[i]`` and ``b[i]`` share an index."""
    return (a[:, :, None] == b[:, None, :]).any(axis=(1, 2))
