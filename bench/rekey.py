"""Matched re-keying at scale: the previous method (brute-force neighbours and a Python loop)
against the current one (KD-trees on a few profile dimensions, a compiled greedy pass, chunked),
with random pairing as the floor, on one parent -> child pair with a planted dependency.

Each row: re-keying time and the relationship gates (cross-table trends, cardinality). The
previous method is loaded from the commit before the change (``git show``) and run only at the
sizes it is predicted to finish within ``LEGACY_BUDGET_S`` (its time grows quadratically).

    python bench/run.py --only rekey
"""

from __future__ import annotations

import json
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


def tables(wide: bool) -> dict[str, TableMetadata]:
    """Profiles of both tables; ``wide`` adds columns without a cross-table dependency."""
    extra_parent, extra_child = (("age", "region"), ("hour", "merchant")) if wide else ((), ())
    return {
        "customers": TableMetadata(
            "customers", "customer_id", ("income", *extra_parent[:1]), (),
            ("segment", *extra_parent[1:]),
            columns=("customer_id", "segment", "income", *extra_parent),
        ),
        "transactions": TableMetadata(
            "transactions", "transaction_id", ("amount", *extra_child[:1]), (),
            ("channel", *extra_child[1:]),
            columns=("transaction_id", "customer_id", "amount", "channel", *extra_child),
            foreign_keys=("customer_id",),
        ),
    }  # fmt: skip


def customers_and_transactions(children: int, seed: int, wide: bool) -> dict[str, pd.DataFrame]:
    """A customer table (segment, income) and its transactions (amount, channel), whose amount
    follows the customer's income, channel its segment and count its segment's activity.
    ``wide`` adds independent columns to both (age and a 12-value region; hour and a
    12-value merchant): a 20-column one-hot profile, as the demo's tables have."""
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
    if wide:
        customers["age"] = rng.integers(18, 90, n)
        customers["region"] = np.char.add("r", rng.integers(0, 12, n).astype(str))
        transactions["hour"] = rng.integers(0, 24, children)
        transactions["merchant"] = np.char.add("m", rng.integers(0, 12, children).astype(str))
    return {"customers": customers, "transactions": transactions}


def _independent_synthetic(children: int, wide: bool) -> dict[str, pd.DataFrame]:
    """What independent per-table synthesis hands to the re-keying: each table drawn on its own
    (here from the true process, another seed), new keys, the foreign key dropped."""
    frames = customers_and_transactions(children, SEED + 1, wide)
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


def _scores(
    real: Mapping[str, pd.DataFrame], synthetic: Mapping[str, pd.DataFrame], wide: bool
) -> dict[str, float]:
    key = RELATIONSHIP.key
    trends = evaluate_cross_table_trends(
        group=GROUP, real=real, synthetic=synthetic, tables=tables(wide)
    )
    return {
        "integrity": evaluate_integrity(group=GROUP, synthetic=synthetic)[key].share,
        "trends": trends[key].score,
        "counted": trends[key].counted_score,
        "cardinality": evaluate_cardinality(group=GROUP, real=real, synthetic=synthetic)[key].score,
    }


def run_once(children: int, wide: bool, method: str) -> dict[str, float]:
    """Re-key one data set with one method (``random``, ``previous``, ``current``): the
    re-keying seconds and the scores."""
    real = customers_and_transactions(children, SEED, wide)
    synthetic = _independent_synthetic(children, wide)
    rekey = _legacy_rekey() if method == "previous" else rekey_children
    start = time.perf_counter()
    out = rekey(
        group=GROUP, real=real, synthetic=synthetic, seed=SEED,
        profiles=None if method == "random" else tables(wide),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return {"seconds": seconds, **_scores(real, out, wide)}


def _run_previous(children: int, wide: bool) -> dict[str, float] | None:
    """:func:`run_once` for the previous method in a subprocess, stopped after
    ``LEGACY_BUDGET_S`` plus a minute for imports, data and scores (``None`` then): its long C
    calls do not give way to a signal."""
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.rekey", str(children), str(int(wide)), "previous"],
            cwd=root, capture_output=True, text=True, timeout=LEGACY_BUDGET_S + 60, check=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_rekey(quick: bool) -> str:
    """Random, previous matched and current matched re-keying at 10k, 100k and 1M children,
    on a narrow and a wide profile."""
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    table = Table(
        ["profile", "child rows", "method", "keys (s)", "integrity", "cross-table trends",
         "trends (pairs with a real trend)", "cardinality"]
    )  # fmt: skip
    for wide in (False, True):
        profile = "wide (20 one-hot columns a side)" if wide else "narrow (6 a side)"
        previous_stopped = False
        for children in sizes:
            for method in ("random", "previous", "current"):
                name = {
                    "random": "random pairing",
                    "previous": f"matched, previous ({LEGACY_COMMIT})",
                    "current": "matched, current",
                }[method]
                print(f"  {profile}, {children:,}: {name} ...", file=sys.stderr, flush=True)
                if method == "previous":
                    s = None if previous_stopped else _run_previous(children, wide)
                    if s is None:
                        why = "not run" if previous_stopped else "stopped"
                        over = f"{why}: > {LEGACY_BUDGET_S:.0f} s"
                        table.add([profile, f"{children:,}", name, over, *[None] * 4])
                        previous_stopped = True
                        continue
                else:
                    s = run_once(children, wide, method)
                table.add([profile, f"{children:,}", name, s["seconds"], s["integrity"],
                           s["trends"], s["counted"], s["cardinality"]])  # fmt: skip
    notes = [
        "Data: customers (segment; income log-normal by segment) and transactions (amount = "
        f"income x noise, channel by segment, count by segment activity), {CHILDREN_PER_PARENT} "
        "transactions per customer on average; 'wide' adds columns without a cross-table "
        "dependency (customers: age, a 12-value region; transactions: hour, a 12-value "
        "merchant). The synthetic side is the same process drawn again per table (another "
        "seed), new keys, no foreign key: an ideal single-table synthesizer, so the scores "
        "measure the re-keying alone.",
        "Cross-table trends: mean Column Pair Trends score over the customer x transaction "
        "column pairs (SDMetrics InterTableTrends); the next column keeps only the pairs with "
        "a real trend (|r| > 0.5, Cramer's V > 0.3). Cardinality: 1 - KS of children per parent.",
        f"Previous method: `rekey_children` as of commit {LEGACY_COMMIT} (scikit-learn "
        "NearestNeighbors, algorithm 'auto': a tree on the narrow profile, brute force on the "
        f"wide one; a Python greedy loop), run in a subprocess stopped after "
        f"{LEGACY_BUDGET_S:.0f} s of budget (plus a minute for imports and scores); once "
        "stopped, larger sizes are not run. Current: KD-trees (scipy cKDTree, eps 1) on at "
        "most 4 canonical correlation directions of the child and its parent (the parent "
        "also on its 4 leading principal components), real child counts placed on the "
        "synthetic parents most like their real ones, at most 250,000 real reference rows, "
        "50,000-row chunks, numba greedy passes.",
        f"Seed {SEED}; each time is one run (the machine may be shared with other jobs).",
    ]
    return write_result(
        "rekey", "Matched re-keying at scale (previous vs current)", table, notes, quick
    )


BENCHMARKS = {"rekey": bench_rekey}


if __name__ == "__main__":  # one run, for _run_previous: children, wide (0/1), method
    print(json.dumps(run_once(int(sys.argv[1]), bool(int(sys.argv[2])), sys.argv[3])))
