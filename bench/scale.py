"""Scale: the example project end to end at 10k, 100k and 1M transactions, on this machine.

Per size, in one fresh home: `python -m bank_example.run demo --scale S` (the `make demo` path:
dbt, three tables synthesized as one group, every gate, publication) under `/usr/bin/time -v`,
then the same command again with nothing changed (the no-op refresh). Reported: wall time and
peak RSS of the run process, time per stage from the Dagster instance's step statistics, the
re-key time the group records, and the ratio of the platform's fit + sample steps to a bare
script doing only the same fits + samples + Parquet writes (the same synthesizer class and
training files, run back to back as a separate process). A 4-table benchmark compares Dagster's
multiprocess executor with the in-process one on four independent tables.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench.report import Table, write_result

REPO = Path(__file__).resolve().parents[1]
#: Transactions per unit of the demo's `--scale` (customers 1,000; accounts ~1.8k).
TRANSACTIONS_PER_SCALE = 15_000
FULL_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)


def _timed(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, float]:
    """Run ``cmd`` under /usr/bin/time -v; wall seconds and peak RSS (MiB) of its process."""
    stats = log.with_suffix(".time")
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(
            ["/usr/bin/time", "-v", "-o", str(stats), *cmd], cwd=REPO, env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    wall = time.perf_counter() - start
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stats.read_text())
    text = log.read_text()
    run = re.search(r"\(synthetic_refresh\) finished in ([\d.]+)s: (\w+)", text)
    built = re.search(r"\(warehouse_refresh\) finished in ([\d.]+)s", text)
    return {
        "wall": wall,
        "rss_mib": int(rss.group(1)) / 1024 if rss else float("nan"),
        "run": float(run.group(1)) if run else float("nan"),
        "warehouse": float(built.group(1)) if built else float("nan"),
        "ok": proc.returncode == 0 and bool(run) and run.group(2) == "SUCCESS",
    }


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SYNTH_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        GX_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        MLFLOW_DISABLE_TELEMETRY="true",
        PYTHONPATH=str(REPO),
    )
    return env


def _stages(home: Path) -> dict[str, float]:
    """Seconds per stage of the latest run in ``home``'s Dagster instance (steps summed)."""
    code = textwrap.dedent(
        """
        import json, dagster as dg
        with dg.DagsterInstance.get() as inst:
            # The warehouse job's run (source + dbt) and the refresh job's, latest of each.
            print(json.dumps({s.step_key: (s.end_time or 0) - (s.start_time or 0)
                              for run in inst.get_runs(limit=2)
                              for s in inst.get_run_step_stats(run.run_id)}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(home), capture_output=True, text=True, check=True
    ).stdout
    steps = json.loads(out.strip().splitlines()[-1])
    stage = {
        "dbt": lambda k: k == "warehouse_dbt_models",
        "extract + split": lambda k: k.endswith("_split"),
        "fit": lambda k: k.endswith("_synthesizer"),
        "sample + re-key": lambda k: k.endswith("_group_synthetic") or k.endswith("_synthetic"),
        "fidelity gate": lambda k: k.endswith("_fidelity"),
        "privacy gate": lambda k: k.endswith("_privacy"),
        "validity gate": lambda k: k.endswith("_validity"),
        "group gates": lambda k: k.endswith(("_integrity", "_cardinality", "_cross_table")),
        "publish": lambda k: k.endswith("_published"),
    }
    return {name: sum(v for k, v in steps.items() if test(k)) for name, test in stage.items()}


_BARE_FN = """
import json, sys, time
import pandas as pd, pyarrow as pa, pyarrow.parquet as pq
from synth_platform.lib.cart import CartSynthesizer
from synth_platform.lib.synthesis import _sdtypes

def bare(root, tables):
    start = time.perf_counter()
    for t in tables:
        d = f"{root}/private/{t}"
        meta = json.load(open(f"{d}/metadata.json"))
        train = pd.read_parquet(f"{d}/train.parquet")
        rows = len(train) + pq.read_metadata(f"{d}/holdout.parquet").num_rows
        sdtypes, key = _sdtypes(meta["sdv"], t)
        columns = [c for c in train.columns if c in sdtypes]
        synth = CartSynthesizer(sdtypes, table=t, primary_key=key, seed=0)
        synth.fit({t: train[columns]})
        out = synth.sample(rows)[t]
        pq.write_table(pa.Table.from_pandas(out, preserve_index=False), f"{root}/bare_{t}.parquet")
    return time.perf_counter() - start
"""

_BARE = (
    _BARE_FN
    + """
print(bare(sys.argv[1], sys.argv[2:] or ["customers", "accounts", "transactions"]))
"""
)

_WARM = (
    """
import synth_platform.preload  # the steps' libraries, imported first as a forkserver does
"""
    + _BARE_FN
    + """
from pathlib import Path
from synth_platform.lib import group as G, lifecycle
from synth_platform.lib.home import SynthHome
from synth_platform.lib.plan import groups_from_specs
from synth_platform.lib.specs import load_manifest, specs_from_manifest
from bench.scale import _rekey_seconds

home = SynthHome(Path(sys.argv[1]))
specs = {m.name: m for m in specs_from_manifest(load_manifest(Path(sys.argv[2])))}
group = next(g for g in groups_from_specs(list(specs.values())) if "transactions" in g.tables)
models = {t: specs[t] for t in group.tables}

def platform():  # what the group's two steps call, refresh inputs included
    start = time.perf_counter()
    inputs = {t: lifecycle.table_refresh_inputs(home=home, model=models[t],
                                                expectations_dir=Path(sys.argv[3]))
              for t in group.tables}
    G.train_group(home=home, group=group, models=models,
                  tracking_uri=home.mlflow_tracking_uri, refresh_inputs=inputs)
    G.sample_group(home=home, group=group, models=models)
    return time.perf_counter() - start, _rekey_seconds(home.root)

rounds = []
for _ in range(int(sys.argv[4])):  # back to back, alternating
    ours, rekey = platform()
    rounds.append({"ours": ours, "rekey": rekey, "bare": bare(str(home.root), list(group.tables))})
print(json.dumps(rounds))
"""
)

WARM_ROUNDS = 2


def _warm(home: Path) -> dict[str, float]:
    """The platform's group fit + sample (the domain calls its two steps make: refresh inputs,
    fits with MLflow logging and registration, sampling with PII, keys and re-keying, batched
    Parquet) and the bare script's fits + samples + writes, back to back in one process that
    imported the libraries of both first, ``WARM_ROUNDS`` times alternating; the last round
    (the first pays one-time set-ups, such as SQLAlchemy's mappers)."""
    out = subprocess.run(
        [sys.executable, "-c", _WARM, str(home), str(REPO / "dbt_project" / "target" /
         "manifest.json"), str(REPO / "expectations"), str(WARM_ROUNDS)],
        env=_env(home), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])[-1]


def _bare(home: Path, tables: tuple[str, ...] = ()) -> float:
    """Seconds of the bare script (fits + samples + Parquet writes of ``tables``, the demo's
    three by default), as a new process."""
    out = subprocess.run(
        [sys.executable, "-c", _BARE, str(home), *tables], env=_env(home), capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip
    return float(out.strip().splitlines()[-1])


def _rekey_seconds(home: Path) -> float:
    found = list((home / "private" / "_groups").glob("*/candidate.json"))
    return json.loads(found[0].read_text()).get("rekey_seconds", float("nan")) if found else 0.0


def _stage_row(n: int, run: str, st: dict[str, float], rekey: float) -> list:
    """A row of the stage table: the stages in order, the re-key seconds after `sample`."""
    values = list(st.values())
    return [n, run, *values[:4], rekey, *values[4:]]


def bench_scale(quick: bool) -> str:
    sizes = QUICK_SIZES if quick else FULL_SIZES
    stages = Table(
        ["transactions", "run", "dbt", "extract + split", "fit", "sample + re-key", "re-key",
         "fidelity gate", "privacy gate", "validity gate", "group gates", "publish"]
    )  # fmt: skip
    totals = Table(
        ["transactions", "published", "end to end (s)", "warehouse run (s)",
         "refresh run (s)", "peak RSS (MiB)",
         "fit + sample (s)", "bare fit + sample + write (s)", "ratio", "ratio without re-key",
         "source changed: refresh run (s)", "source changed: fit + sample (s)",
         "source changed: bare (s)", "source changed: ratio",
         "source changed: ratio without re-key",
         "same process: fit + sample (s)", "same process: bare (s)", "same process: ratio",
         "same process: ratio without re-key",
         "no-op refresh: run (s)", "no-op: end to end (s)", "no-op: new releases"]
    )  # fmt: skip
    for n in sizes:
        scale = n / TRANSACTIONS_PER_SCALE
        home = Path(tempfile.mkdtemp(prefix=f"synth-scale-{n}-"))
        env = _env(home)
        cmd = [sys.executable, "-m", "bank_example.run", "demo", "--scale", f"{scale:.4f}"]
        first = _timed(cmd, env, home / "first.log")
        st = _stages(home)
        rekey = _rekey_seconds(home)
        releases = sorted((home / "public").glob("*/v*/manifest.json"))
        # What the refresh schedule runs, in a process of its own: the twins' job alone.
        again = _timed([*cmd[:3], "refresh"], env, home / "again.log")
        new_releases = len(sorted((home / "public").glob("*/v*/manifest.json"))) - len(releases)
        bare = _bare(home)
        ours = st["fit"] + st["sample + re-key"]
        stages.add(_stage_row(n, "first", st, rekey))
        # A source that changed (the demo rebuilt with another seed, the same size) in the
        # same home: what a nightly refresh pays, without the home's one-time set-up (the
        # MLflow database's tables are created by the first fit: ~2.3 s).
        changed = _timed([*cmd, "--seed", "8"], env, home / "changed.log")
        st2, rekey2 = _stages(home), _rekey_seconds(home)
        bare2 = _bare(home)
        ours2 = st2["fit"] + st2["sample + re-key"]
        stages.add(_stage_row(n, "source changed", st2, rekey2))
        warm = _warm(home)
        totals.add(
            [n, "yes" if first["ok"] and changed["ok"] else "NO", first["wall"],
             first["warehouse"], first["run"], first["rss_mib"],
             ours, bare, ours / bare, (ours - rekey) / bare,
             changed["run"], ours2, bare2, ours2 / bare2, (ours2 - rekey2) / bare2,
             warm["ours"], warm["bare"], warm["ours"] / warm["bare"],
             (warm["ours"] - warm["rekey"]) / warm["bare"],
             again["run"], again["wall"], new_releases]
        )  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)
    wide = _wide(quick)
    executors = _executors(quick)
    notes = [
        "One run per size, one fresh home each (`python -m bank_example.run demo --scale S`, "
        f"S = transactions / {TRANSACTIONS_PER_SCALE:,}); customers are S x 1,000 and accounts "
        "about S x 1,800. Stage seconds are Dagster step durations (summed over the group's "
        "three tables); `re-key` is inside `sample + re-key`.",
        "`ratio`: the platform's fit + sample steps (MLflow logging, model registration, PII, "
        "batched Parquet, matched re-keying) over a bare script doing the same three CART fits, "
        "samples and Parquet writes in one fresh process, one table after another (the "
        "platform fits and samples a group's tables at once, in threads of its step). Definition "
        "loading and the imports before the first step are in `end to end` only; a library a "
        "step imports on first use counts in that step. `source changed`: after the no-op run, the demo source rebuilt "
        "with another seed at the same size (`demo --seed 8`), refreshed in the same home, and "
        "the bare script again on its training files: the cost of a refresh whose data "
        "changed, without the home's one-time set-up (the first fit creates the MLflow "
        "database, ~2.3 s).",
        "`same process`: the comparison with the bare script in the same process conditions. "
        "One process imports the libraries of both (`synth_platform.preload`, the bare "
        "script's), then runs, back to back and twice, what the group's two steps call "
        "(refresh inputs, `train_group`, `sample_group`: the fits with MLflow runs and "
        "registered models, sampling with PII, keys, matched re-keying and Parquet) and the "
        "bare script; the second round is shown (the first pays one-time set-ups in both, "
        "such as SQLAlchemy's mappers and scikit-learn's first fit). The step columns before "
        "it compare a run's steps, which pay their libraries' first use (MLflow's SQL store "
        "~1 s, numba's kernels), with a bare script whose process is fresh too.",
        "`warehouse run`: the example's `warehouse_refresh` job (demo source + `dbt build`), "
        "the team's own dbt job; `refresh run`: the twins' `synthetic_refresh` job. No-op "
        "refresh: `python -m bank_example.run refresh` (the refresh job alone, what its "
        "schedule runs) with nothing changed, in a new process; `end to end` includes Python "
        "start-up, imports and definition loading. Each split reads and fingerprints its "
        "source; the group synthesizer sees the latest releases' refresh keys and does not "
        "materialize, so sampling, gates and publication are skipped.",
        "Peak RSS: the run process (`/usr/bin/time -v`, Maximum resident set size); dbt runs as "
        "a child process of its own.",
        "`wide`: a second table below, one 100-column table at 100k rows through the same "
        "lifecycle.",
    ]
    text = write_result(
        "scale",
        "The example project at scale: stages, peak memory, overhead, no-op refresh",
        totals,
        notes,
        quick,
    )
    extra = (
        f"\n## Time per stage (s)\n\n{stages.markdown()}\n\n## A wide table\n\n{wide}\n"
        f"\n## Executors\n\n{executors}\n"
    )
    path = REPO / "bench" / "results" / "scale.md"
    path.write_text(path.read_text() + extra)
    return text + extra


_JOB = """
import os, sys, time
import dagster as dg
from synth_platform.forkserver import built_once_per_forkserver

def _defs(upstream):
    from tests.example import example_definitions
    return example_definitions(
        home=os.environ["SYNTH_HOME"], project_dir=os.environ["SCALE_BENCH_PROJECT"],
        select=os.environ["SCALE_BENCH_SELECT"].split(","), refresh_upstream=upstream,
    )

def warehouse():  # every asset; run with the demo source and the dbt models selected
    everything = dg.define_asset_job("everything", selection=dg.AssetSelection.all())
    return dg.Definitions.merge(_defs(True), dg.Definitions(jobs=[everything])).resolve_job_def(
        "everything")

@built_once_per_forkserver  # as the example's definitions: once per forkserver, not per step
def job():  # the twins alone: what the refresh schedule runs
    return _defs(False).resolve_job_def("synthetic_refresh").with_executor_def(
        dg.multi_or_in_process_executor)

if __name__ == "__main__":
    executor = sys.argv[1]
    source = {"ops": {"demo_bank_source": {"config": {"scale": float(sys.argv[2]), "seed": 5}}}}
    barrier = os.environ.get("SCALE_BENCH_BARRIER")  # start the twins job with the others
    with dg.DagsterInstance.get() as inst:
        start = time.perf_counter()
        try:
            built = warehouse()
            twins = job().asset_layer.executable_asset_keys
            upstream = [k for k in built.asset_layer.executable_asset_keys if k not in twins]
            res = dg.execute_job(dg.reconstructable(warehouse), instance=inst,
                                 run_config=source, asset_selection=upstream)
            print("warehouse", time.perf_counter() - start, "success", res.success)
        finally:  # a peer waits for this, failed or not (and for at most 15 min)
            if barrier:
                open(f"{barrier}.{os.getpid()}", "w").close()
        if barrier:
            folder, name = os.path.split(barrier)
            peers, waited = int(os.environ["SCALE_BENCH_PEERS"]), time.perf_counter()
            while sum(f.startswith(name + ".") for f in os.listdir(folder)) < peers and (
                    time.perf_counter() - waited < 900):
                time.sleep(0.05)
        config = {"execution": {"config": {executor: {"max_concurrent": 2, "start_method": {
            "forkserver": {"preload_modules": ["scale_job", "tests.example",
                                               "synth_platform.preload"]}}}
            if executor == "multiprocess" else {}}}}
        from bench.scale import _cpu_busy_seconds
        busy, start = _cpu_busy_seconds(), time.perf_counter()
        res = dg.execute_job(dg.reconstructable(job), instance=inst, run_config=config)
        print("seconds", time.perf_counter() - start, "cpu", _cpu_busy_seconds() - busy,
              "success", res.success)
        # From the run's start to its first step's: the forkserver's preload, under multiprocess
        steps = [s.start_time for s in inst.get_run_step_stats(res.run_id) if s.start_time]
        print("head", min(steps) - inst.get_run_stats(res.run_id).start_time)
"""


def _four_tables_project(root: Path) -> Path:
    """The example dbt project plus four independent opted-in copies of the transactions."""
    project = root / "dbt_project"
    shutil.copytree(REPO / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    marts = project / "models" / "marts"
    for i in range(1, 5):
        (marts / f"t{i}.sql").write_text(
            f"select * exclude (account_id) from {{{{ ref('transactions') }}}} where "
            f"transaction_id % 4 = {i - 1}\n"
        )
        (marts / f"t{i}.yml").write_text(
            f"models:\n  - name: t{i}\n    config:\n      meta:\n        synthetic:\n"
            f"          seed: {i}\n"
        )
    return project


def _wide_project(root: Path, n_rows: int, n_columns: int) -> Path:
    """The example dbt project plus one opted-in ``n_columns``-wide table of ``n_rows`` rows
    (:func:`bench.data.wide_table`: skewed, integer, null-heavy, datetime, categorical and
    boolean columns over shared latent factors), read by its dbt model from a Parquet file."""
    from bench.data import wide_table

    project = root / "dbt_project"
    shutil.copytree(REPO / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    source = root / "wide_source.parquet"
    table = wide_table(n_rows, seed=11, n_columns=n_columns)
    table.insert(0, "row_id", range(1, n_rows + 1))  # a stable key, row for row
    table.to_parquet(source, index=False)
    marts = project / "models" / "marts"
    (marts / "wide.sql").write_text(f"select * from read_parquet('{source}')\n")
    (marts / "wide.yml").write_text(
        "models:\n  - name: wide\n    config:\n      meta:\n        synthetic:\n"
        "          seed: 11\n    columns:\n      - name: row_id\n        data_tests:\n"
        "          - unique\n          - not_null\n"
    )
    return project


def _run_job_script(
    root: Path,
    project: Path,
    select: str,
    executor: str,
    scale: float,
    timed: bool,
    extra_env: dict[str, str] | None = None,
) -> dict[str, float | str]:
    """Run :data:`_JOB` for ``select`` (comma-separated models) in the fresh home ``root``:
    the warehouse job, then the twins job on ``executor``; under /usr/bin/time if ``timed``."""
    env = {**_env(root), "SCALE_BENCH_PROJECT": str(project), "SCALE_BENCH_SELECT": select,
           **(extra_env or {})}  # fmt: skip
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{root}"
    (root / "dagster").mkdir()
    (root / "dagster" / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\n"
    )
    script = root / "scale_job.py"  # importable by name: forkserver preloads it
    script.write_text(_JOB)
    log = root / "job.log"
    cmd = [sys.executable, str(script), executor, f"{scale:.4f}"]
    if timed:
        found = _timed(cmd, env, log)
        text, rss = log.read_text(), found["rss_mib"]
    else:
        out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        text, rss = out.stdout + out.stderr, float("nan")
    built = re.search(r"warehouse ([\d.]+) success True", text)
    run = re.search(r"seconds ([\d.]+) cpu ([\d.]+) success (\w+)", text)
    if not run:
        return {"error": text[-300:]}
    head = re.search(r"head ([\d.]+)", text)
    return {
        "warehouse": float(built.group(1)) if built else float("nan"),
        "head": float(head.group(1)) if head else float("nan"),
        "wall": float(run.group(1)),
        "cpu": float(run.group(2)),
        "published": run.group(3),
        "rss_mib": rss,
    }


def _wide(quick: bool) -> str:
    """One 100-column table at 100k rows (10k with ``quick``) through the whole lifecycle."""
    n_rows, n_columns = (10_000 if quick else 100_000), 100
    root = Path(tempfile.mkdtemp(prefix="synth-wide-"))
    table = Table(
        ["rows", "columns", "published", "twins job (s)", "peak RSS (MiB)", "extract + split",
         "fit", "sample", "fidelity gate", "privacy gate", "validity gate", "publish",
         "fit + sample (s)", "bare fit + sample + write (s)", "ratio"]
    )  # fmt: skip
    try:  # a failed run is a row of the table, never the end of the whole benchmark
        project = _wide_project(root, n_rows, n_columns)
        run = _run_job_script(root, project, "wide", "in_process", 0.1, timed=True)
        if "error" in run or run["published"] != "True":
            raise RuntimeError(run.get("error") or "the twins job failed (see its log)")
        st = _stages(root)
        bare = _bare(root, ("wide",))
        ours = st["fit"] + st["sample + re-key"]
        table.add(
            [n_rows, n_columns, run["published"], run["wall"], run["rss_mib"],
             st["extract + split"], st["fit"], st["sample + re-key"], st["fidelity gate"],
             st["privacy gate"], st["validity gate"], st["publish"], ours, bare, ours / bare]
        )  # fmt: skip
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        table.add([n_rows, n_columns, f"error: {str(exc)[-300:]}", *[float("nan")] * 12])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return (
        table.markdown()
        + "\n\nOne opted-in dbt model over `bench.data.wide_table` (a row id, then skewed, "
        "integer and null-heavy numeric, datetime, categorical and boolean columns driven by "
        "shared latent factors; 48 / 10 / 28 / 14 of them), the example's defaults otherwise "
        "(`cart`, every gate). The warehouse job (dbt) runs first in the same process; `twins "
        "job` is the refresh job alone, in-process; peak RSS is that process's. Stage seconds "
        "are its Dagster step durations; `ratio` as above: fit + sample steps over the bare "
        "script's CART fit, sample and Parquet write of the same training file."
    )


def _cpu_busy_seconds() -> float:
    """Seconds of CPU the whole machine has spent busy since boot (all cores; /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:7]) - idle) / os.sysconf("SC_CLK_TCK")  # not steal (field 8)


_CEILING = """
import sys, time
import numpy as np, pandas as pd
from sklearn.tree import DecisionTreeRegressor

def work():  # what the steps do: Python loops, pandas group-bys and sorts, a tree fit
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.integers(0, 1000, 400_000), "b": rng.random(400_000),
                          "c": rng.choice(["x", "y", "z"], 400_000)})
    total = sum(i * i % 7 for i in range(3_000_000))
    for _ in range(3):
        frame.groupby(["a", "c"]).b.agg(["mean", "std"])
        frame.sort_values(["c", "b"])
    DecisionTreeRegressor(min_samples_leaf=5).fit(frame[["a", "b"]], frame.b)
    return total

work()  # imports and first calls done before the clock starts
start = time.perf_counter()
for _ in range(int(sys.argv[1])):
    work()
print(time.perf_counter() - start)
"""


def _two_core_ceiling(rounds: int = 3) -> float:
    """What two busy processes get from this machine against one: the same CPU-bound work
    (:data:`_CEILING`) alone, then two copies at once; 2.0 on two fully independent cores."""

    def run(copies: int) -> float:
        procs = [
            subprocess.Popen([sys.executable, "-c", _CEILING, str(rounds)], stdout=subprocess.PIPE,
                             text=True)
            for _ in range(copies)
        ]  # fmt: skip
        return max(float(p.communicate()[0].strip().splitlines()[-1]) for p in procs)

    alone = run(1)
    return 2 * alone / run(2)


_ONE_THREAD = "in_process, one thread per step"
#: (label, executor, environment). The second row limits the threads the steps start
#: themselves (the CART fit's column threads, the privacy gate's numba kernels, BLAS): the
#: in-process run then does the same work on about one core, the yardstick for what a second
#: core adds. (SciPy's KD-tree queries in the privacy gate still use both cores.)
_ONE_THREAD_ENV = {"SYNTH_CART_THREADS": "1", "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "OPENBLAS_NUM_THREADS": "1"}  # fmt: skip
_EXECUTOR_ROWS = (
    ("in_process", "in_process", None),
    (_ONE_THREAD, "in_process", _ONE_THREAD_ENV),
    ("multiprocess", "multiprocess", None),
)  # fmt: skip


_HALVES = "two in_process runs at once (t1, t2 / t3, t4), one thread per step"


def _two_halves_at_once(n: int) -> dict[str, float | str]:
    """The same work on two cores without Dagster's multiprocess executor: two homes, each
    with half the tables, whose twins jobs (in-process, one thread per step) start together
    once both warehouse jobs are done. What two cores give this workload on this machine, as
    a run of :func:`_run_job_script`: the later one's wall, the machine's busy CPU seconds
    meanwhile, or the error of one that failed."""
    from concurrent.futures import ThreadPoolExecutor

    barrier = Path(tempfile.mkdtemp(prefix="synth-exec-barrier-")) / "ready"
    roots = [Path(tempfile.mkdtemp(prefix="synth-exec-half-")) for _ in range(2)]
    env = {**_ONE_THREAD_ENV, "SCALE_BENCH_BARRIER": str(barrier),
           "SCALE_BENCH_PEERS": "2"}  # fmt: skip

    def half(i: int) -> dict[str, float | str]:
        return _run_job_script(
            roots[i], _four_tables_project(roots[i]), ("t1,t2", "t3,t4")[i], "in_process",
            n / TRANSACTIONS_PER_SCALE, timed=False, extra_env=env,
        )  # fmt: skip

    try:
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(half, range(2)))
    finally:
        for root in (*roots, barrier.parent):
            shutil.rmtree(root, ignore_errors=True)
    for r in runs:
        if "error" in r or r["published"] != "True":
            return {"error": str(r.get("error", "not published"))}
    return {"wall": max(float(r["wall"]) for r in runs), "cpu": max(float(r["cpu"]) for r in runs),
            "published": "True", "head": float("nan"), "warehouse": float("nan")}  # fmt: skip


def _executor_row(
    label: str, rows: int, run: dict[str, float | str], walls: dict[str, float]
) -> list:
    """A row of the executors table for ``run`` (:func:`_run_job_script`'s result), its
    speed-ups over the rows already in ``walls``, to which its wall time is added."""
    nan = float("nan")
    if "error" in run:
        return [label, rows, *[nan] * 6, f"error: {run['error']}", nan]
    wall, cpu = float(run["wall"]), float(run["cpu"])
    walls[label] = wall
    return [label, rows, wall, walls.get("in_process", nan) / wall,
            walls.get(_ONE_THREAD, nan) / wall, run["head"], cpu, cpu / wall, run["published"],
            run["warehouse"]]  # fmt: skip


def _executors(quick: bool) -> str:
    # Transactions in all; each table gets a quarter. Two sizes: the steps' imports are a fixed
    # cost (paid once, before the first step, under multiprocess), so the speed-up grows with
    # the work.
    sizes = (40_000,) if quick else (1_000_000, 4_000_000)
    table = Table(
        ["executor", "rows per table", "twins job (s)", "speed-up", "speed-up over one thread",
         "first step after (s)", "CPU (s)", "cores busy (CPU / wall)", "published",
         "warehouse job before it (s)"]
    )  # fmt: skip
    for n in sizes:
        walls: dict[str, float] = {}  # by row label, for the speed-ups
        for label, executor, extra_env in _EXECUTOR_ROWS:
            root = Path(tempfile.mkdtemp(prefix=f"synth-exec-{executor}-"))
            project = _four_tables_project(root)
            run = _run_job_script(
                root, project, "t1,t2,t3,t4", executor, n / TRANSACTIONS_PER_SCALE, timed=False,
                extra_env=extra_env,
            )  # fmt: skip
            table.add(_executor_row(label, n // 4, run, walls))
            shutil.rmtree(root, ignore_errors=True)
        table.add(_executor_row(_HALVES, n // 4, _two_halves_at_once(n), walls))
    ceiling = _two_core_ceiling()
    return (
        table.markdown()
        + "\n\nFour independent opted-in tables (quarters of the example's transactions, no "
        "foreign key), each in a fresh home: the warehouse job (demo source, `dbt build`) runs "
        "first, in-process, and its time is shown apart; then the twins' refresh job alone "
        "(what the refresh schedule runs), as a process of its own, is timed. `CPU`: the "
        "machine's busy seconds during that job (from /proc/stat, so the forkserver's step "
        "processes count too, and so would any other load); `cores busy`: CPU over wall time, "
        "2 at most here. `multiprocess`: `max_concurrent: 2` and a forkserver that preloads "
        "`synth_platform.preload` (the libraries the steps use) and the job's module, whose "
        "definitions are built once in the forkserver (`built_once_per_forkserver`); each step "
        "process still opens the Dagster instance and builds its execution plan. The "
        "splits hold the `duckdb_warehouse` pool one at a time either way. `speed-up`: the "
        "in-process twins job's time over this one's. The in-process run is not one core's: "
        "its steps start threads of their own (the CART fit's columns, the privacy gate's "
        "kernels; `cores busy` above 1), so the row `one thread per step` runs it again with "
        "those limited (`SYNTH_CART_THREADS=1`, `NUMBA_NUM_THREADS=1`, `OMP_NUM_THREADS=1`, "
        "`OPENBLAS_NUM_THREADS=1`), and `speed-up over one thread` is that run's time over "
        "this one's. The last row is what two cores give this very work without Dagster's "
        "executor: two homes with two of the tables each, their twins jobs (in-process, one "
        "thread per step) started together once both warehouse jobs were done; its time is "
        "the later one's. Steps are started by `dagster/priority` (splits, fits, samples, "
        "then the gates longest first). `first step after`: from the run's "
        "start to its first step's; under multiprocess that is the forkserver importing the "
        "steps' libraries once (the in-process run pays the same imports inside its first "
        "steps), a fixed cost that the two cores cannot share, so the speed-up grows with the "
        "rows."
        f"\n\nWhat two cores give here, measured in the same run: the same CPU-bound work "
        f"(Python loops, pandas group-bys and sorts, a tree fit; `_CEILING`) alone, then two "
        f"copies at once: **{ceiling:.2f}x** the throughput of one."
    )


BENCHMARKS = {"scale": bench_scale}
