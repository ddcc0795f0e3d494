"""Synthesis quality side by side: our default against a hand-fitted SDV GaussianCopula.

Per table and method, in one run: SDMetrics' plain ``QualityReport`` (Column Shapes, Column
Pair Trends, overall) and ``DiagnosticReport``, the share of synthetic rows closer to train than
to holdout (DCR share, 0.5 is ideal), exact copies of training rows, fit + sample seconds and
the peak RSS of the process that fitted and sampled (each fit runs in a fresh subprocess).

Methods:

* ``ours`` - what the platform does with a default `meta.synthetic` block: our metadata
  derivation (:func:`derive_metadata`) and the default synthesizer (sequential CART,
  :mod:`synth_platform.lib.cart`) through :func:`fit_synthesizer` / :func:`sample_batches`.
* ``sdv_gaussian_copula`` - the simplest thing a user could do instead: SDV's auto-detected
  metadata and ``GaussianCopulaSynthesizer`` with its defaults.
* candidates: ``sdv_gaussian_copula_per_column`` (SDV's copula with each numerical column's
  marginal chosen by fit: one copula per SDV distribution - norm, beta, truncnorm, gamma,
  uniform -, then per column the one whose sampled column is closest to the training column
  by KS), ``cart_unsmoothed`` (the same CART without smoothing: synthpop's default),
  ``sdv_ctgan`` (SDV's CTGAN, 100 epochs, small tables only) and ``mostlyai_engine`` (MOSTLY
  AI's TabularARGN, Apache-2.0, when `mostlyai-engine` is importable from the interpreter
  ``MOSTLY_PYTHON``, default ``.venv-mostlyai/bin/python`` made by ``make mostlyai-env``;
  skipped otherwise).

Tables: the demo bank's three (keys and PII left out), the wide 56-column bench table,
generated tables built to be hard for copulas (zero-inflated amounts, point masses, heavy
tails, integer counts, a 200-level categorical, strong categorical x categorical
dependence, datetimes, nulls, independent columns) and real public tables shipped inside the
statsmodels package (no download).

Every method is judged on the same columns with the same SDMetrics metadata (SDV's own
detection on the real table; its ``ordinal`` columns are scored as categorical).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.data import demo_tables, wide_table
from bench.report import Table, write_result

SEED = 11
METHODS = (
    "ours",
    "sdv_gaussian_copula",
    "sdv_gaussian_copula_per_column",
    "cart_unsmoothed",
    "sdv_ctgan",
    "mostlyai_engine",
)
#: CTGAN is only run on tables up to this many rows (it takes minutes per table on 2 cores).
CTGAN_MAX_ROWS = 3_000
MOSTLY_PYTHON = os.environ.get(
    "MOSTLY_PYTHON", str(Path(__file__).resolve().parent.parent / ".venv-mostlyai/bin/python")
)
#: TabularARGN's training budget per table, minutes (CPU).
MOSTLY_MINUTES = 1.0


# ------------------------------------------------------------------------------------ tables


def _zero_inflated(n: int, seed: int) -> pd.DataFrame:
    """Lending-like: zero-inflated and heavy-tailed amounts, point masses, integer counts."""
    rng = np.random.default_rng(seed)
    grade = rng.choice(list("ABCDEFG"), n, p=[0.2, 0.25, 0.2, 0.15, 0.1, 0.07, 0.03])
    risk = pd.Series(grade).map({g: i for i, g in enumerate("ABCDEFG")}).to_numpy()
    income = np.round(rng.lognormal(10.8 - 0.08 * risk, 0.6), -2)
    loan = np.round(np.minimum(income * rng.uniform(0.1, 0.5, n), 40_000), -1)
    late = rng.random(n) < 0.03 + 0.04 * risk  # 3-27 % pay late fees
    fees = np.where(late, np.round(rng.pareto(2.5, n) * 15 + 15, 2), 0.0)
    debt = np.where(rng.random(n) < 0.55, 0.0, np.round(rng.lognormal(8, 1.4, n), 2))
    utilisation = np.clip(rng.beta(0.6, 1.5, n) + 0.1 * risk / 6, 0, 1)
    utilisation[rng.random(n) < 0.15] = 0.0  # point mass at 0
    utilisation[rng.random(n) < 0.05] = 1.0  # and at 1
    delinquencies = rng.poisson(0.2 + 0.25 * risk)
    income[rng.random(n) < 0.08] = np.nan
    return pd.DataFrame({
        "grade": grade, "income": income, "loan_amount": loan, "late_fees": fees,
        "revolving_debt": debt, "utilisation": np.round(utilisation, 3),
        "delinquencies": delinquencies, "term_months": rng.choice([36, 60], n, p=[0.7, 0.3]),
    })  # fmt: skip


def _categories(n: int, seed: int) -> pd.DataFrame:
    """Retail-like: a 200-level Zipf categorical, strong cat x cat and cat x numeric, dates."""
    rng = np.random.default_rng(seed)
    stores = np.array([f"store_{i:03d}" for i in range(200)], dtype=object)
    p = 1 / np.arange(1, 201) ** 1.1
    store = rng.choice(200, n, p=p / p.sum())
    region = np.array(["north", "south", "east", "west", "central"], dtype=object)[store % 5]
    country = np.where(region == "central", "DE", np.where(store % 7 == 0, "FR", "UK"))
    currency = pd.Series(country).map({"DE": "EUR", "FR": "EUR", "UK": "GBP"}).to_numpy()
    currency = np.where(rng.random(n) < 0.02, "USD", currency)  # rare level
    channel = np.where(rng.random(n) < 0.3 + 0.4 * (store % 3 == 0), "online", "in_store")
    basket = np.round(rng.gamma(2 + 3 * (channel == "online"), 12 + (store % 10)), 2)
    items = 1 + rng.poisson(basket / 25)
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 366, n), unit="D")
    returned = rng.random(n) < 0.05 + 0.1 * (channel == "online")
    loyalty = np.where(rng.random(n) < 0.4, None, rng.choice(["silver", "gold"], n, p=[0.8, 0.2]))
    return pd.DataFrame({
        "store": stores[store], "region": region, "country": country, "currency": currency,
        "channel": channel, "basket_value": basket, "items": items, "day": day,
        "returned": returned, "loyalty": loyalty,
    })  # fmt: skip


def _independent_nulls(n: int, seed: int) -> pd.DataFrame:
    """Independent columns, nulls everywhere (10-60 %), a constant-ish column, odd scales."""
    rng = np.random.default_rng(seed)
    out = pd.DataFrame({
        "uniform": rng.uniform(-1e6, 1e6, n),
        "tiny": rng.normal(1e-6, 1e-7, n),
        "student_t": rng.standard_t(2, n),
        "bimodal": np.concatenate([rng.normal(-5, 1, n // 2), rng.normal(5, 1, n - n // 2)]),
        "flag": rng.random(n) < 0.5,
        "mostly_one": np.where(rng.random(n) < 0.97, "one", rng.choice(["two", "three"], n)),
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 10**8, n), unit="s"),
    })  # fmt: skip
    for i, c in enumerate(out.columns):
        mask = rng.random(n) < (0.1, 0.6, 0.3, 0.2, 0.15, 0.4, 0.25)[i]
        out[c] = (
            out[c].astype(object).where(~mask, None)
            if c in ("flag", "mostly_one")
            else (out[c].mask(mask))
        )
    out["flag"] = out["flag"].astype("boolean")
    return out


def _statsmodels(name: str) -> pd.DataFrame:
    import statsmodels.api as sm

    return getattr(sm.datasets, name).load_pandas().data.copy()


def tables(quick: bool) -> dict[str, Callable[[], pd.DataFrame]]:
    """Benchmark tables by name (built lazily)."""
    scale = 0.5 if quick else 1.0
    n = 2_000 if quick else 8_000

    def demo(t: str, drop: list[str]) -> Callable[[], pd.DataFrame]:
        return lambda: demo_tables(scale, seed=7)[t].drop(columns=drop)

    pii = ["full_name", "email", "phone", "national_id", "street_address", "birth_date"]
    out: dict[str, Callable[[], pd.DataFrame]] = {
        "demo customers": demo("customers", ["customer_id", *pii]),
        "demo accounts": demo("accounts", ["account_id", "customer_id"]),
        "demo transactions": demo("transactions", ["transaction_id", "account_id"]),
        "wide (56 columns)": lambda: wide_table(2_000 if quick else 5_000, seed=SEED),
        "generated: zero-inflated": lambda: _zero_inflated(n, SEED),
        "generated: categories": lambda: _categories(n, SEED),
        "generated: independent + nulls": lambda: _independent_nulls(n, SEED),
        "statsmodels fair": lambda: _statsmodels("fair"),
        "statsmodels anes96": lambda: _statsmodels("anes96"),
        "statsmodels star98": lambda: _statsmodels("star98"),
    }
    if not quick:
        out["statsmodels randhie"] = lambda: _statsmodels("randhie")
    return out


# ----------------------------------------------------------------------------- metadata


def _as_ns(df: pd.DataFrame) -> pd.DataFrame:
    """Datetimes as naive nanoseconds (SDMetrics compares raw integers: units must agree)."""
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[c]):
            df[c] = df[c].astype("datetime64[ns]")
    return df


def referee_sdtypes(real: pd.DataFrame) -> dict[str, str]:
    """SDV's own detection on the real table, as a user would run it (``ordinal`` and other
    non-SDMetrics sdtypes are scored as categorical)."""
    from sdv.metadata import Metadata

    detected = Metadata.detect_from_dataframes({"t": real}).to_dict()["tables"]["t"]["columns"]
    out = {}
    for c, info in detected.items():
        t = info["sdtype"]
        out[c] = (
            t if t in ("numerical", "datetime", "categorical", "boolean", "id") else ("categorical")
        )
    return out


# ------------------------------------------------------------------------------ fitting


def _fit_sample(method: str, train_path: str, rows: int, out_path: str) -> dict:
    """Fit ``method`` on the training rows and sample ``rows``; runs in a fresh process."""
    warnings.filterwarnings("ignore")
    train = pd.read_parquet(train_path)
    start = time.perf_counter()
    if method in ("ours", "cart_unsmoothed"):
        from synth_platform.lib.metadata import derive_metadata
        from synth_platform.lib.specs import ModelSpec, TableSpec
        from synth_platform.lib.synthesis import fit_synthesizer, sample_batches

        params = {} if method == "ours" else {"smoothing": False}
        model = ModelSpec(name="t", unique_id="model.bench.t", relation="main.t",
                          spec=TableSpec(parameters=params, seed=SEED), columns={})  # fmt: skip
        meta, sdv = derive_metadata(data=train, model=model)
        fit = fit_synthesizer(train=train, metadata=meta, sdv_metadata=sdv, spec=model.spec)
        fitted = time.perf_counter()
        batches = sample_batches(synthesizer=fit.synthesizer, table="t", rows=rows, seed=SEED,
                                 batch_size=50_000)  # fmt: skip
        synthetic = pd.concat(list(batches()), ignore_index=True)
    elif method.startswith("sdv_"):
        from sdv.metadata import Metadata
        from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer

        from synth_platform.lib.synthesis import seed_everything

        seed_everything(SEED)
        metadata = Metadata.detect_from_dataframes({"t": train})
        if method == "sdv_ctgan":
            synth = CTGANSynthesizer(metadata, epochs=100)
        elif method == "sdv_gaussian_copula_per_column":
            synth = GaussianCopulaSynthesizer(
                metadata, numerical_distributions=_best_marginals(metadata, train)
            )
        else:
            synth = GaussianCopulaSynthesizer(metadata)
        synth.fit({"t": train})
        fitted = time.perf_counter()
        synthetic = synth.sample(num_rows=rows)
        synthetic = synthetic["t"] if isinstance(synthetic, dict) else synthetic
    else:
        raise ValueError(method)
    done = time.perf_counter()
    synthetic.to_parquet(out_path)
    return {
        "fit_s": fitted - start,
        "sample_s": done - fitted,
        "rss_mib": peak_rss_mib(),
    }


def peak_rss_mib() -> float:
    """This process's peak RSS since it started its program (``VmHWM``). ``ru_maxrss`` would
    also count the parent's pages at fork time, which Linux keeps across ``exec``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _best_marginals(metadata: Any, train: pd.DataFrame) -> dict[str, str]:
    """Per numerical column, the SDV marginal whose sample fits the training column best (KS)."""
    from scipy.stats import ks_2samp
    from sdv.single_table import GaussianCopulaSynthesizer

    columns = metadata.to_dict()["tables"]["t"]["columns"]
    numeric = [c for c, v in columns.items() if v["sdtype"] == "numerical"]
    best: dict[str, tuple[float, str]] = {}
    for dist in ("norm", "beta", "truncnorm", "gamma", "uniform"):
        synth = GaussianCopulaSynthesizer(metadata, default_distribution=dist)
        synth.fit({"t": train})
        sample = synth.sample(num_rows=len(train))
        sample = sample["t"] if isinstance(sample, dict) else sample
        for c in numeric:
            real, fake = train[c].dropna(), sample[c].dropna()
            if len(real) and len(fake):
                stat = float(ks_2samp(real, fake).statistic)
                if c not in best or stat < best[c][0]:
                    best[c] = (stat, dist)
    return {c: d for c, (_, d) in best.items()}


_MOSTLY_SCRIPT = r"""
import json, sys, tempfile, time, warnings
warnings.filterwarnings("ignore")
from pathlib import Path
import pandas as pd
from mostlyai import engine
train = pd.read_parquet(sys.argv[1]); rows = int(sys.argv[2]); out = sys.argv[3]
ws = Path(tempfile.mkdtemp())
engine.init_logging()
t0 = time.perf_counter()
engine.split(workspace_dir=ws, tgt_data=train, model_type="TABULAR")
engine.analyze(workspace_dir=ws)
engine.encode(workspace_dir=ws)
engine.train(workspace_dir=ws, max_training_time=float(sys.argv[4]))
t1 = time.perf_counter()
engine.generate(workspace_dir=ws, sample_size=rows)
syn = pd.read_parquet(ws / "SyntheticData")
t2 = time.perf_counter()
syn.to_parquet(out)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(json.dumps({"fit_s": t1 - t0, "sample_s": t2 - t1, "rss_mib": int(hwm) / 1024}))
"""


def _mostly_available() -> bool:
    if not Path(MOSTLY_PYTHON).exists():
        return False
    probe = subprocess.run([MOSTLY_PYTHON, "-c", "import mostlyai.engine"], capture_output=True)
    return probe.returncode == 0


def _run_method(
    method: str, train: pd.DataFrame, rows: int, tmp: Path
) -> tuple[dict, pd.DataFrame]:
    train_path, out_path = tmp / "train.parquet", tmp / f"{method}.parquet"
    train.to_parquet(train_path)
    if method == "mostlyai_engine":
        proc = subprocess.run(
            [MOSTLY_PYTHON, "-c", _MOSTLY_SCRIPT, str(train_path), str(rows), str(out_path),
             str(MOSTLY_MINUTES)],
            capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        if proc.returncode:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1])
        stats = json.loads(proc.stdout.strip().splitlines()[-1])
    else:
        with mp.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
            stats = pool.apply(_fit_sample, (method, str(train_path), rows, str(out_path)))
    return stats, pd.read_parquet(out_path)


# ------------------------------------------------------------------------------ scoring


def score(real: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame,
          synthetic: pd.DataFrame, sdtypes: dict[str, str]) -> dict[str, float]:  # fmt: skip
    """The referees' figures for one synthetic table."""
    from sdmetrics.reports.single_table import DiagnosticReport, QualityReport

    from synth_platform.lib.evaluation import evaluate_privacy

    cols = [c for c, t in sdtypes.items() if t != "id"]
    meta = {"columns": {c: {"sdtype": sdtypes[c]} for c in cols}}
    syn = _as_ns(synthetic[cols])
    for c in cols:  # same dtypes as the real table (SDMetrics compares raw values)
        if sdtypes[c] == "boolean":
            syn[c] = syn[c].astype("boolean")
    quality = QualityReport()
    quality.generate(_as_ns(real[cols]), syn, meta, verbose=False)
    props = quality.get_properties().set_index("Property")["Score"]
    diagnostic = DiagnosticReport()
    diagnostic.generate(_as_ns(real[cols]), syn, meta, verbose=False)
    kinds = {
        "numeric": [c for c in cols if sdtypes[c] == "numerical"],
        "datetime": [c for c in cols if sdtypes[c] == "datetime"],
        "categorical": [c for c in cols if sdtypes[c] in ("categorical", "boolean")],
    }
    privacy = evaluate_privacy(train=_as_ns(train[cols]), holdout=_as_ns(holdout[cols]),
                               synthetic=syn, baseline=False, seed=SEED, **kinds)  # fmt: skip
    return {
        "quality": float(quality.get_score()),
        "shapes": float(props["Column Shapes"]),
        "trends": float(props["Column Pair Trends"]),
        "diagnostic": float(diagnostic.get_score()),
        "dcr_share": float(privacy.dcr_share),
        "exact_copies": int(privacy.exact_copies_train),
    }


# ----------------------------------------------------------------------------- benchmark


def bench_quality(quick: bool) -> str:
    """Our default vs a hand-fitted SDV GaussianCopula (and the candidates) per table."""
    methods = [m for m in METHODS if m != "mostlyai_engine" or _mostly_available()]
    table = Table(["table", "rows x cols", "method", "quality", "shapes", "trends",
                   "diagnostic", "DCR share", "exact copies", "fit + sample (s)",
                   "peak RSS (MiB)"])  # fmt: skip
    gains: dict[str, float] = {}
    worst: tuple[float, str] = (math.inf, "")
    notes: list[str] = []
    for name, build in tables(quick).items():
        real = build().reset_index(drop=True)
        sdtypes = referee_sdtypes(real)
        order = np.random.default_rng(SEED).permutation(len(real))
        cut = int(len(real) * 0.8)
        train = real.iloc[order[:cut]].reset_index(drop=True)
        holdout = real.iloc[order[cut:]].reset_index(drop=True)
        results: dict[str, dict] = {}
        for method in methods:
            if method == "sdv_ctgan" and (quick or len(real) > CTGAN_MAX_ROWS):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    stats, synthetic = _run_method(method, train, len(real), Path(tmp))
                except Exception as exc:  # a candidate failing is a result, not a crash
                    notes.append(f"{name}: {method} failed: {type(exc).__name__}: {exc}")
                    continue
            results[method] = {**stats, **score(real, train, holdout, synthetic, sdtypes)}
            r = results[method]
            table.add([name, f"{len(real):,} x {real.shape[1]}", method, r["quality"],
                       r["shapes"], r["trends"], r["diagnostic"], r["dcr_share"],
                       r["exact_copies"], r["fit_s"] + r["sample_s"], r["rss_mib"]])  # fmt: skip
            print(f"  {name:32s} {method:26s} quality {r['quality']:.3f}", flush=True)
        if "ours" in results and "sdv_gaussian_copula" in results:
            gain = results["ours"]["quality"] - results["sdv_gaussian_copula"]["quality"]
            gains[name] = gain
            worst = min(worst, (gain, name))
    if gains:
        mean = float(np.mean(list(gains.values())))
        beats = sum(g > 0 for g in gains.values())
        notes.insert(0, (
            f"**ours vs hand-fitted SDV GaussianCopula (QualityReport overall): mean "
            f"improvement {mean:+.3f}; better on {beats} of {len(gains)} tables; worst table "
            f"'{worst[1]}' ({worst[0]:+.3f}).**"
        ))  # fmt: skip
    notes += [
        "quality/shapes/trends: SDMetrics `QualityReport` (per-table binning, trend filter of "
        "SDMetrics >= 0.27) on the real table vs the synthetic one, same columns and SDV-detected "
        "metadata for every method; diagnostic: `DiagnosticReport` score.",
        "DCR share: share of synthetic rows closer to a training row than to a holdout row "
        "(80/20 split, equal reference sizes; 0.5 is ideal); exact copies: synthetic rows equal "
        "to a training row.",
        "fit + sample: wall seconds in a fresh subprocess; peak RSS: that process's `VmHWM` "
        "(includes its imports: SDV/torch for every method but mostlyai_engine's own venv).",
        f"sdv_ctgan: 100 epochs, tables up to {CTGAN_MAX_ROWS:,} rows only (minutes per table).",
    ]
    if "mostlyai_engine" not in methods:
        notes.append(f"mostlyai_engine: skipped (no `mostlyai-engine` at {MOSTLY_PYTHON}).")
    else:
        notes.append(
            f"mostlyai_engine: TabularARGN, `max_training_time={MOSTLY_MINUTES}` "
            "minutes, CPU, its own venv (torch 2.13.0 CPU)."
        )
    return write_result("quality", "Synthesis quality: ours vs hand-fitted SDV", table, notes,
                        quick)  # fmt: skip


BENCHMARKS = {"quality": bench_quality}

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print(bench_quality("--quick" in sys.argv))
