"""Matched re-keying at scale: the previous method (brute-force neighbours and a Python loop)
against the current one (KD-trees on a few profile dimensions, a compiled greedy pass, chunked),
with random pairing as the floor, on one parent -> child pair with a planted dependency.

Each row: re-keying time and the relationship gates (cross-table trends, cardinality). The
previous method is loaded from the commit before the change (``git show``) and run only at the
sizes it is predicted to finish within ``LEGACY_BUDGET_S`` (its time grows quadratically).

    python bench/run.py --only rekey
"""

from __future__ import annotations

import subprocess
import sys
import time
import types
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report import Table, write_result
from synth_platform.lib.metadata import TableMetadata
from synth_platform.lib.multitable import (
    Relationship,
    TableGroup,
    evaluate_cardinality,
    evaluate_cross_table_trends,
    evaluate_integrity,
    rekey_children,
)

SEED = 42
LEGACY_COMMIT = "50a7cc4"  # the last commit with the brute-force matched re-keying
LEGACY_BUDGET_S = 180.0
CHILDREN_PER_PARENT = 10
_SEGMENTS = np.array(["retail", "premium", "business", "student"])
_SEGMENT_SHARE = np.array([0.5, 0.2, 0.2, 0.1])
_SEGMENT_INCOME = np.array([10.5, 11.3, 11.0, 9.6])  # log-income means
_SEGMENT_ACTIVITY = np.array([1.0, 1.4, 2.0, 0.5])  # relative transactions per customer
_CHANNELS = np.array(["card", "online", "wire", "cash"])
_SEGMENT_CHANNEL = np.array(
    [[0.5, 0.3, 0.05, 0.15], [0.4, 0.4, 0.15, 0.05], [0.1, 0.3, 0.55, 0.05], [0.6, 0.2, 0.0, 0.2]]
)

RELATIONSHIP = Relationship("transactions", "customer_id", "customers", "customer_id")
GROUP = TableGroup("customers", ("customers", "transactions"), (RELATIONSHIP,))
TABLES = {
    "customers": TableMetadata(
        "customers", "customer_id", ("income",), (), ("segment",),
        columns=("customer_id", "segment", "income"),
    ),
    "transactions": TableMetadata(
        "transactions", "transaction_id", ("amount",), (), ("channel",),
        columns=("transaction_id", "customer_id", "amount", "channel"),
        foreign_keys=("customer_id",),
    ),
}  # fmt: skip


def customers_and_transactions(children: int, seed: int) -> dict[str, pd.DataFrame]:
    """A customer table (segment, income) and its transactions (amount, channel), whose amount
    follows the customer's income, channel its segment and count its segment's activity."""
    rng = np.random.default_rng(seed)
    n = max(1, children // CHILDREN_PER_PARENT)
    segment = rng.choice(len(_SEGMENTS), n, p=_SEGMENT_SHARE)
    income = rng.lognormal(_SEGMENT_INCOME[segment], 0.4)
    activity = _SEGMENT_ACTIVITY[segment] * rng.gamma(2.0, 0.5, n)
    owner = rng.choice(n, children, p=activity / activity.sum())
    cumulative = _SEGMENT_CHANNEL.cumsum(axis=1)[segment[owner]]
    channel = (rng.random((children, 1)) > cumulative).sum(axis=1)
    customers = pd.DataFrame(
        {"customer_id": np.arange(n), "segment": _SEGMENTS[segment], "income": income}
    )
    transactions = pd.DataFrame(
        {
            "transaction_id": np.arange(children),
            "customer_id": owner,
            "amount": income[owner] * 0.002 * rng.lognormal(0.0, 0.3, children),
            "channel": _CHANNELS[np.minimum(channel, len(_CHANNELS) - 1)],
        }
    )
    return {"customers": customers, "transactions": transactions}


def _independent_synthetic(children: int) -> dict[str, pd.DataFrame]:
    """What independent per-table synthesis hands to the re-keying: each table drawn on its own
    (here from the true process, another seed), new keys, the foreign key dropped."""
    frames = customers_and_transactions(children, SEED + 1)
    return {
        "customers": frames["customers"].assign(customer_id=lambda f: f["customer_id"] + 10**9),
        "transactions": frames["transactions"].drop(columns="customer_id"),
    }


def _legacy_rekey() -> Callable[..., dict[str, pd.DataFrame]]:
    """``rekey_children`` as of ``LEGACY_COMMIT`` (loaded from git, run against today's
    imports)."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "-C", str(root), "show", f"{LEGACY_COMMIT}:synth_platform/lib/multitable.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    module = types.ModuleType("legacy_multitable")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{LEGACY_COMMIT}:multitable.py", "exec"), module.__dict__)
    return module.rekey_children


def _scores(real: Mapping[str, pd.DataFrame], synthetic: Mapping[str, pd.DataFrame]) -> dict:
    key = RELATIONSHIP.key
    trends = evaluate_cross_table_trends(group=GROUP, real=real, synthetic=synthetic, tables=TABLES)
    return {
        "integrity": evaluate_integrity(group=GROUP, synthetic=synthetic)[key].share,
        "trends": trends[key].score,
        "counted": trends[key].counted_score,
        "cardinality": evaluate_cardinality(group=GROUP, real=real, synthetic=synthetic)[key].score,
    }


def bench_rekey(quick: bool) -> str:
    """Random, previous matched and current matched re-keying at 10k, 100k and 1M children."""
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    legacy = _legacy_rekey()
    table = Table(
        ["child rows", "method", "keys (s)", "integrity", "cross-table trends",
         "trends (pairs with a real trend)", "cardinality"]
    )  # fmt: skip
    legacy_seconds: tuple[int, float] | None = None
    methods: list[tuple[str, Callable[..., dict[str, pd.DataFrame]], bool]] = [
        ("random pairing", rekey_children, False),
        (f"matched, previous ({LEGACY_COMMIT})", legacy, True),
        ("matched, current", rekey_children, True),
    ]
    for children in sizes:
        real = customers_and_transactions(children, SEED)
        synthetic = _independent_synthetic(children)
        for name, rekey, matched in methods:
            if rekey is legacy and legacy_seconds is not None:
                done_rows, done_s = legacy_seconds
                predicted = done_s * (children / done_rows) ** 2
                if predicted > LEGACY_BUDGET_S:
                    table.add([f"{children:,}", name, f"not run (~{predicted:,.0f} s predicted)",
                               None, None, None, None])  # fmt: skip
                    continue
            print(f"  {children:,} children: {name} ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            out = rekey(
                group=GROUP, real=real, synthetic=synthetic, seed=SEED,
                profiles=TABLES if matched else None,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            if rekey is legacy:
                legacy_seconds = (children, seconds)
            s = _scores(real, out)
            table.add([f"{children:,}", name, seconds, s["integrity"], s["trends"], s["counted"],
                       s["cardinality"]])  # fmt: skip
    notes = [
        "Data: customers (segment; income log-normal by segment) and transactions (amount = "
        f"income x noise, channel by segment, count by segment activity), {CHILDREN_PER_PARENT} "
        "transactions per customer on average. The synthetic side is the same process drawn "
        "again per table (another seed), new keys, no foreign key: an ideal single-table "
        "synthesizer, so the scores measure the re-keying alone.",
        "Cross-table trends: mean Column Pair Trends score over the 4 customer x transaction "
        "column pairs (SDMetrics InterTableTrends); the next column keeps only the pairs with "
        "a real trend (|r| > 0.5, Cramer's V > 0.3). Cardinality: 1 - KS of children per parent.",
        f"Previous method: `rekey_children` as of commit {LEGACY_COMMIT}, run only where its "
        f"quadratic time (extrapolated from the last size it ran at) stays under "
        f"{LEGACY_BUDGET_S:.0f} s. Current: KD-trees (scipy cKDTree, eps 1) on at most 4 "
        "principal components, at most 250,000 real reference rows, 50,000-row chunks, "
        "numba greedy pass; the first call includes loading numba's cached kernel.",
        f"Seed {SEED}; the keys time is one run (the machine may be shared).",
    ]
    return write_result(
        "rekey", "Matched re-keying at scale (previous vs current)", table, notes, quick
    )


BENCHMARKS = {"rekey": bench_rekey}
