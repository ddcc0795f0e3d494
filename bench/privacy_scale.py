"""Privacy metrics on every row: ``evaluate_privacy`` at 10k to 1M synthetic rows, before/after.

Benchmark ``privacy_scale`` (writes ``bench/results/privacy_scale.md``): the whole
``evaluate_privacy`` call with its defaults (exact copies, DCR to train and holdout, NNDR,
near copies, random baseline), each in a fresh subprocess whose wall time and peak resident
memory (VmHWM) are reported, on

* a transactions-shaped table (the demo's ``transactions`` resampled, plus a zero-inflated
  ``fee`` and an integer ``installments``: 3 numeric, 1 datetime, 3 categorical columns); real
  rows split 80/20 into train and holdout, as many synthetic rows as real ones;
* the wide table widened to 80 columns (the 56-column table plus the first 24 columns of
  another seed), 100k real rows split 80/20 and 100k synthetic rows.

"before" runs the code of ``BEFORE_REVISION`` (extracted with ``git archive`` into a temporary
directory put first on ``PYTHONPATH``), "after" the working tree. Goal: the 1M transactions
case in at most 5 minutes on 2 cores with a peak RSS under 3 GiB, every synthetic row evaluated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data import DEMO_COLUMNS, Columns, transactions_like, wide_columns, wide_table
from bench.evaluation import _peak_rss_mib
from bench.report import Table, write_result

ROOT = Path(__file__).resolve().parent.parent
#: The last commit before evaluate_privacy searched every row (20,000-row default cap).
BEFORE_REVISION = "50a7cc4"
GOAL_SECONDS = 300
GOAL_RSS_MIB = 3 * 1024
WIDE_COLUMNS = 80
_CODE = "PRIVACY_SCALE_CODE"  # environment variable: directory of the "before" package


def transactions_shape(n_rows: int, seed: int) -> tuple[pd.DataFrame, Columns]:
    """The demo transactions plus a zero-inflated fee and an integer instalment count."""
    columns, _ = DEMO_COLUMNS["transactions"]
    frame = transactions_like(n_rows, seed=seed)
    rng = np.random.default_rng([seed, 7])
    fee = np.round(frame["amount"].to_numpy() * rng.uniform(0.005, 0.03, n_rows), 2)
    frame["fee"] = np.where(rng.random(n_rows) < 0.7, 0.0, fee)  # 70% point mass at zero
    frame["installments"] = rng.choice([1, 1, 1, 3, 6, 12], size=n_rows)
    numeric = [*columns.numeric, "fee", "installments"]
    return frame, Columns(numeric, columns.datetime, columns.categorical)


def wide_shape(n_rows: int, seed: int, *, distort: bool) -> tuple[pd.DataFrame, Columns]:
    """The 56-column wide table plus the first columns of another seed, renamed."""
    columns, _ = wide_columns()
    extra_columns, _ = wide_columns(WIDE_COLUMNS - len(columns.all))
    frame = wide_table(n_rows, seed=seed, distort=distort)
    extra = wide_table(n_rows, seed=seed + 100, distort=distort, n_columns=len(extra_columns.all))
    frame = pd.concat([frame, extra.add_suffix("_b")], axis=1)

    def both(a: list[str], b: list[str]) -> list[str]:
        return [*a, *(f"{c}_b" for c in b)]

    return frame, Columns(
        both(columns.numeric, extra_columns.numeric),
        both(columns.datetime, extra_columns.datetime),
        both(columns.categorical, extra_columns.categorical),
    )


def _split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(len(frame) * 0.8)
    return (
        frame.iloc[np.sort(order[:cut])].reset_index(drop=True),
        frame.iloc[np.sort(order[cut:])].reset_index(drop=True),
    )


def _worker(shape: str, n: int, max_rows: int | None) -> dict[str, object]:
    """One ``evaluate_privacy`` call in this process; returns timings and peak memory."""
    from synth_platform.lib.evaluation import evaluate_privacy
    from synth_platform.lib.evaluation import privacy as P

    if shape == "transactions":
        real, columns = transactions_shape(n, seed=1)
        synthetic, _ = transactions_shape(n, seed=2)
    else:
        real, columns = wide_shape(n, seed=1, distort=False)
        synthetic, _ = wide_shape(n, seed=3, distort=True)
    train, holdout = _split(real, seed=0)
    out: dict[str, object] = {"rss_inputs_mib": _peak_rss_mib(), "columns": len(columns.all)}
    # Load (or compile, on a first run) every kernel so that the timing is the call itself.
    threshold, P._SCREEN_MIN_WORK = P._SCREEN_MIN_WORK, 0
    P._nearest_l1_clipped(np.zeros((2, 8)), np.zeros((8, 2)), 1)  # float32 screen
    P._SCREEN_MIN_WORK = threshold
    P._nearest_l1_clipped(np.zeros((2, 2)), np.zeros((2, 2)), 1)  # float64 kernel
    kwargs = {} if max_rows is None else {"max_rows": max_rows}
    start = time.perf_counter()
    report = evaluate_privacy(
        train=train, holdout=holdout, synthetic=synthetic, **columns.as_kwargs(), **kwargs
    )
    out["seconds"] = time.perf_counter() - start
    out["rss_peak_mib"] = _peak_rss_mib()
    out["dcr_share"] = report.dcr_share
    out["near_copies_excess"] = report.near_copies_excess
    out["n_synthetic_evaluated"] = report.n_synthetic_evaluated
    out["n_reference"] = report.n_reference
    out["package"] = str(Path(sys.modules["synth_platform"].__file__).parent.parent)
    return out


def _subprocess(
    shape: str, n: int, max_rows: int | None, code: Path | None, timeout: float
) -> dict[str, object]:
    command = [sys.executable, "-m", "bench.privacy_scale", "_worker", shape, str(n)]
    command.append("default" if max_rows is None else str(max_rows))
    env = dict(os.environ)
    env.pop(_CODE, None)
    if code is not None:  # the "before" package shadows the working tree's (see __main__)
        env[_CODE] = str(code)
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _before_code(directory: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", BEFORE_REVISION, "synth_platform"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive.stdout, check=True)
    return directory


def bench_privacy_scale(quick: bool) -> str:
    """``evaluate_privacy`` at 10k, 100k and 1M synthetic rows, before and after."""
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    wide_n = 20_000 if quick else 100_000
    cases: list[tuple[str, str, int, int | None]] = []  # (version, shape, rows, max_rows)
    for n in sizes:
        cases.append(("before (defaults)", "transactions", n, None))
        if 20_000 < n <= 100_000:  # at most 20,000 rows the defaults already take every row
            cases.append(("before, every row (max_rows=n)", "transactions", n, n))
        cases.append(("after (defaults)", "transactions", n, None))
    cases += [
        ("before (defaults)", "wide", wide_n, None),
        ("before, every row (max_rows=n)", "wide", wide_n, wide_n),
        ("after (defaults)", "wide", wide_n, None),
    ]
    table = Table(
        [
            "version",
            "table",
            "rows (real = train 80% + holdout 20%; synthetic)",
            "synthetic rows evaluated",
            "train/holdout rows searched",
            "time (s)",
            "peak RSS (MiB)",
            "inputs (MiB)",
            "dcr_share",
            "near_copies_excess",
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        before = _before_code(Path(tmp))
        for version, shape, n, max_rows in cases:
            code = before if version.startswith("before") else None
            result = _subprocess(shape, n, max_rows, code, timeout=1800)
            expected = str(ROOT if code is None else code)
            if "error" not in result and result["package"] != expected:
                result = {"error": f"imported {result['package']}, not {expected}"}
            label = "transactions-like" if shape == "transactions" else "wide"
            size = f"{n:,} real; {n:,} synthetic"
            if "error" in result:
                table.add([version, label, size, None, None, f"({result['error']})"] + [None] * 4)
                continue
            table.add(
                [
                    version,
                    f"{label} ({result['columns']} cols)",
                    size,
                    f"{result['n_synthetic_evaluated']:,}",
                    f"{result['n_reference']:,}",
                    result["seconds"],
                    result["rss_peak_mib"],
                    result["rss_inputs_mib"],
                    result["dcr_share"],
                    result["near_copies_excess"],
                ]
            )
    notes = [
        f"'before' is commit {BEFORE_REVISION} (default max_rows=20,000: at most 20,000 "
        "synthetic rows, train and holdout sampled to min(train, holdout, 20,000), near copies "
        "against at most 200,000 train rows); 'before, every row' is the same code with "
        "max_rows = n (not run at 1M: its brute-force search is quadratic). 'after' is the "
        "working tree with its defaults (every synthetic row up to 1,000,000; train sampled "
        "to the holdout's size; near copies against every train row).",
        "Each row is one fresh subprocess: 'time' is the evaluate_privacy call alone (the "
        "compiled kernels are loaded first), 'peak RSS' the process's maximum resident memory "
        "(VmHWM), 'inputs' the maximum before the call (the generated tables).",
        f"Goal: the 1M transactions-like case in at most {GOAL_SECONDS} s with peak RSS under "
        f"{GOAL_RSS_MIB:,} MiB. The machine is shared: timings vary with its load.",
    ]
    if quick:
        notes.append("--quick: smaller sizes than the goals name; run without it for the goals.")
    return write_result("privacy_scale", "Privacy metrics on every row", table, notes, quick)


BENCHMARKS = {"privacy_scale": bench_privacy_scale}

if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "_worker":
        if os.environ.get(_CODE):  # ahead of the working directory that `-m` puts first
            sys.path.insert(0, os.environ[_CODE])
        max_rows = None if sys.argv[4] == "default" else int(sys.argv[4])
        print(json.dumps(_worker(sys.argv[2], int(sys.argv[3]), max_rows)))
    else:
        sys.exit("usage: python bench/run.py [--quick] [--only privacy_scale]")
