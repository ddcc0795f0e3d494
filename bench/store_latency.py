"""Consumer query latency on the public store, idle and while refreshes publish.

Benchmark (writes ``bench/results/store_latency.md``):

* ``store_latency`` - K=2 reader processes each loop over a typical consumer read: open a
  fresh `connect(store)`, aggregate the latest 1,000,000-row ``transactions`` release, run
  the provenance query ``select table_name, version, scores from releases where is_latest``,
  close. Measured (a) with no refresh running and (b) while the main process publishes
  two-table groups (``transactions`` + ``accounts``) back to back with ``keep=2``.
  Goal: zero reader errors during refreshes, and p99 during refreshes within 3x the idle p99.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.report import Table, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
READERS = 2
P99_FACTOR = 3.0

CONSUMER_QUERY = """
select merchant_category, channel, count(*) as n, avg(amount) as mean_amount,
       sum(is_fraud::int) as frauds
from transactions
where occurred_at >= timestamp '2025-01-01'
group by all
order by n desc
"""
PROVENANCE_QUERY = "select table_name, version, scores from releases where is_latest"
SETS_QUERY = "select max(release_set) from releases where is_latest"


def _reader(store: Path, start_at: float, seconds: float) -> dict[str, object]:
    """Loop over the consumer read from `start_at` for `seconds`; latencies in ms."""
    from synth_platform.lib.publish import connect

    def read() -> int:
        with connect(store) as con:
            con.execute(CONSUMER_QUERY).fetchall()
            con.execute(PROVENANCE_QUERY).fetchall()
            return con.execute(SETS_QUERY).fetchall()[0][0]

    read()  # warm-up (imports, page cache), not counted
    time.sleep(max(0.0, start_at - time.time()))
    latencies, errors, sets = [], [], set()
    deadline = start_at + seconds
    while time.time() < deadline:
        t = time.perf_counter()
        try:
            sets.add(read())
        except Exception as exc:  # every failure is a finding
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies.append((time.perf_counter() - t) * 1000)
    return {"latencies_ms": latencies, "errors": errors, "release_sets": sorted(sets)}


def _candidates(work: Path, n: int) -> list[dict[str, tuple[Path, dict]]]:
    """Two alternating groups: a transactions release of `n` rows and a small accounts one."""
    from bench.data import transactions_like

    groups = []
    for seed in (1, 2):
        tx = transactions_like(n, seed=seed)
        rng = np.random.default_rng(seed)
        accounts = pd.DataFrame(
            {
                "account_id": np.arange(n // 20),
                "balance": np.round(rng.lognormal(8, 1, n // 20), 2),
                "kind": rng.choice(["current", "savings", "credit"], n // 20),
            }
        )
        group = {}
        for table, frame in (("transactions", tx), ("accounts", accounts)):
            path = work / f"{table}-{seed}.parquet"
            frame.to_parquet(path, index=False)
            scores = {
                "fidelity": {"score": 0.91, "threshold": 0.8, "passed": True},
                "privacy": {"score": 0.97, "threshold": 0.9, "passed": True},
            }
            group[table] = (path, {"rows": len(frame), "seed": seed, "scores": scores})
        groups.append(group)
    return groups


def _publish(store: Path, group: dict[str, tuple[Path, dict]]) -> float:
    from synth_platform.lib.publish import Staged, publish_group

    t = time.perf_counter()
    publish_group(store=store, releases={t: Staged(p, m) for t, (p, m) in group.items()}, keep=2)
    return time.perf_counter() - t


def _phase(store: Path, seconds: float, refresh: list | None) -> dict[str, object]:
    """Run READERS reader processes for `seconds`; publish `refresh` groups in a loop if given."""
    start_at = time.time() + 3.0  # time for the readers to import and warm up
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.store_latency",
                "_reader",
                str(store),
                str(start_at),
                str(seconds),
            ],  # fmt: skip
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(READERS)
    ]
    publish_seconds = []
    time.sleep(max(0.0, start_at - time.time()))
    if refresh:
        i = 0
        while time.time() < start_at + seconds:
            publish_seconds.append(_publish(store, refresh[i % len(refresh)]))
            i += 1
    latencies, errors, sets = [], [], set()
    for proc in procs:
        out, err = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            errors.append(f"reader exited {proc.returncode}: {err.strip().splitlines()[-1:]}")
            continue
        res = json.loads(out.strip().splitlines()[-1])
        latencies += res["latencies_ms"]
        errors += res["errors"]
        sets |= set(res["release_sets"])
    return {
        "latencies": latencies,
        "errors": errors,
        "sets": sorted(sets),
        "publish_seconds": publish_seconds,
    }


def _stats(latencies: list[float]) -> tuple[float, float, float]:
    if not latencies:
        return float("nan"), float("nan"), float("nan")
    a = np.asarray(latencies)
    return float(np.median(a)), float(np.percentile(a, 99)), float(a.max())


def bench_store_latency(quick: bool) -> str:
    """Reader latency (median, p99, max, errors), idle and during refreshes."""
    n = 200_000 if quick else 1_000_000
    seconds = 6.0 if quick else 20.0
    work = Path(tempfile.mkdtemp(prefix="store-latency-"))
    try:
        store = work / "public"
        groups = _candidates(work, n)
        _publish(store, groups[0])
        _publish(store, groups[1])
        idle = _phase(store, seconds, None)
        busy = _phase(store, seconds, groups)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    table = Table(
        [
            "phase",
            "reads",
            "median (ms)",
            "p99 (ms)",
            "max (ms)",
            "p99 / idle p99",
            "errors",
            "release sets seen",
            "goal",
            "result",
        ]  # fmt: skip
    )
    i_med, i_p99, i_max = _stats(idle["latencies"])
    b_med, b_p99, b_max = _stats(busy["latencies"])
    table.add(
        [
            "idle",
            len(idle["latencies"]),
            i_med,
            i_p99,
            i_max,
            1.0,
            len(idle["errors"]),
            len(idle["sets"]),
            "0 errors",
            "PASS" if not idle["errors"] else "MISS",
        ]  # fmt: skip
    )
    ratio = b_p99 / i_p99 if i_p99 else float("nan")
    ok = not busy["errors"] and ratio <= P99_FACTOR and len(busy["sets"]) >= 2
    table.add(
        [
            f"during refreshes ({len(busy['publish_seconds'])} publications)",
            len(busy["latencies"]),
            b_med,
            b_p99,
            b_max,
            ratio,
            len(busy["errors"]),
            len(busy["sets"]),
            f"0 errors, p99 <= {P99_FACTOR:g}x idle, new sets served",
            "PASS" if ok else "MISS",
        ]  # fmt: skip
    )
    pubs = busy["publish_seconds"]
    versions = ", ".join(f"{m} {metadata.version(m)}" for m in ("duckdb", "pyarrow"))
    notes = [
        f"{READERS} reader processes, {seconds:g} s per phase, {n:,}-row `transactions` "
        f"(5 columns) + {n // 20:,}-row `accounts` per release; {versions}.",
        "One read = `connect(store)` (fresh in-memory DuckDB, catalog attached read-only) + the "
        "consumer aggregate over the latest `transactions` (group by merchant category and "
        "channel, filtered on time) + the provenance query `select table_name, version, scores "
        "from releases where is_latest` + close. The first read of each process is a warm-up "
        "and is not counted.",
        "Refresh: the benchmark process publishes the two tables as one group "
        "(`publish_group`, keep=2) back to back for the whole phase, alternating two candidate "
        "pairs; "
        + (
            f"{len(pubs)} publications, median {statistics.median(pubs):.2f} s each "
            f"(copy, fsync, catalog rebuild)."
            if pubs
            else "no publication completed."
        ),
        "The readers and the publisher share the machine's cores, so the latency increase "
        "during refreshes includes plain CPU and disk contention with the publisher, not only "
        "the store's design.",
    ]
    if busy["errors"] or idle["errors"]:
        notes.append("Errors: " + "; ".join(sorted(set(idle["errors"] + busy["errors"]))[:5]))
    if quick:
        notes.append("--quick: smaller sizes than the goals name; run without it for the goals.")
    return write_result("store_latency", "Store read latency during refreshes", table, notes, quick)


BENCHMARKS = {"store_latency": bench_store_latency}

if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "_reader":
        res = _reader(Path(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
        print(json.dumps(res))
    elif len(sys.argv) == 1 or sys.argv[1:] == ["--quick"]:
        print(bench_store_latency("--quick" in sys.argv))
    else:
        sys.exit("usage: python bench/store_latency.py [--quick]  (or: python bench/run.py)")
