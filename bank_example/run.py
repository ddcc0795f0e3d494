"""`make demo`: `python -m bank_example.run demo` runs the example's warehouse job (demo source +
dbt build), then the twins' refresh job, and shows the published twins.

The run goes through a persistent Dagster instance (`$SYNTH_HOME/dagster`), so it is listed in
the Dagster UI (`make dev`) afterwards.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

MARKER = "# Written by synth_platform."

RUN_MONITORING_YAML = """\
# Run monitoring (the daemon; `dagster dev` runs it) marks runs whose process died as failed
# instead of leaving them STARTED forever. The default run launcher cannot probe a run worker,
# so a run nobody reports on (a killed `make demo`, a killed `dagster dev`) is failed when it
# exceeds max_runtime_seconds; raise it, or tag a long run `dagster/max_runtime` (seconds).
# A run worker killed while `dagster dev` keeps running is failed by its code server at once.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180    # STARTING longer than this: failed
  cancel_timeout_seconds: 180   # CANCELING longer than this: canceled
  max_runtime_seconds: 21600    # STARTED longer than 6 h: terminated and failed
  max_resume_run_attempts: 0    # the default launcher cannot resume a run
  poll_interval_seconds: 60
"""

DAGSTER_YAML = f"""\
{MARKER} Runs, event logs and schedules live in this folder (SQLite).
# For production point `storage` at Postgres (dagster-postgres) instead.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
{RUN_MONITORING_YAML}"""


def prepare_dagster_home(root: Path) -> Path:
    """Create `$SYNTH_HOME/dagster` with a dagster.yaml, and export DAGSTER_HOME to it.

    A dagster.yaml written by an earlier version (no `run_monitoring`) gets the block added;
    a file written by anyone else is left alone."""
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or root / "dagster")
    dagster_home.mkdir(parents=True, exist_ok=True)
    cfg = dagster_home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(DAGSTER_YAML)
    else:
        text = cfg.read_text()
        if text.startswith(MARKER) and "run_monitoring:" not in text:
            cfg.write_text(text.rstrip("\n") + "\n" + RUN_MONITORING_YAML)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home


REFRESH_JOB = "synthetic_refresh"
WAREHOUSE_JOB = "warehouse_refresh"


def run_demo(*, scale: float | None, seed: int) -> int:
    """The warehouse job then the refresh job (``scale=None``: the refresh job only)."""
    import dagster as dg

    from bank_example.definitions import defs as load_defs
    from synth_platform import connect

    root = Path(os.environ.get("SYNTH_HOME") or PROJECT_ROOT / ".synth").resolve()
    os.environ["SYNTH_HOME"] = str(root)  # the dbt profile and the component read the same home
    # dagster-dbt runs the `dbt` on PATH: the one of this interpreter's environment.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    prepare_dagster_home(root)
    defs = load_defs()
    with dg.DagsterInstance.get() as instance:
        # The team's warehouse job (demo source + dbt build), then the twins' refresh job,
        # which reads the warehouse as dbt left it and skips tables with nothing changed.
        if scale is not None:
            start = time.perf_counter()
            built = defs.resolve_job_def(WAREHOUSE_JOB).execute_in_process(
                instance=instance,
                run_config={
                    "ops": {"demo_bank_source": {"config": {"scale": scale, "seed": seed}}}
                },
                raise_on_error=False,
            )
            print(
                f"\nWarehouse run {built.run_id} ({WAREHOUSE_JOB}) finished in "
                f"{time.perf_counter() - start:.1f}s: {'SUCCESS' if built.success else 'FAILURE'}"
            )
            if not built.success:
                return 1
        start = time.perf_counter()
        result = defs.resolve_job_def(REFRESH_JOB).execute_in_process(
            instance=instance, raise_on_error=False
        )
    elapsed = time.perf_counter() - start
    failed_checks = [
        (e.check_name, e.metadata) for e in result.get_asset_check_evaluations() if not e.passed
    ]
    print(
        f"\nRun {result.run_id} ({REFRESH_JOB}) finished in {elapsed:.1f}s: "
        f"{'SUCCESS' if result.success else 'FAILURE'}"
    )
    for name, md in failed_checks:
        print(f"  blocked by check {name}: {md.get('failures').value if 'failures' in md else ''}")
    public = root / "public"
    if not (public / "catalog.duckdb").exists():
        print("Nothing published.", file=sys.stderr)
        return 1
    with connect(public) as con:
        rel = con.execute(
            "select table_name, version, rows, published_at, "
            "scores->>'$.fidelity.score' as fidelity, scores->>'$.privacy.score' as dcr_share "
            "from releases where is_latest order by table_name"
        ).fetchall()
    print(f"\nPublished synthetic tables (public store: {public}):")
    print(f"  {'table':<14}{'version':<10}{'rows':>8}  {'fidelity':>9}  {'dcr_share':>9}")
    for t, v, n, _, fid, dcr in rel:
        print(f"  {t:<14}{v:<10}{n:>8}  {float(fid):>9.3f}  {float(dcr):>9.3f}")
    first = rel[0][0]
    print(
        "\nQuery them with plain DuckDB SQL (read-only; the catalog holds only published data):\n"
        f"  python -c \"import duckdb; con = duckdb.connect('{public / 'catalog.duckdb'}', "
        f"read_only=True); print(con.sql('select * from {first} limit 5')); "
        "print(con.sql('select table_name, version, rows, scores from releases where is_latest'))\"\n"
        "\nor from any engine, straight from the release's Parquet file:\n"
        f"  select * from read_parquet('{public / first / rel[0][1] / 'data.parquet'}');"
    )
    return 0 if result.success else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bank_example.run", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build the demo source and run the whole lifecycle")
    demo.add_argument(
        "--scale",
        type=float,
        default=float(os.environ.get("SCALE", 1.0)),
        help="demo size: 1.0 = 1,000 customers (~15k transactions)",
    )
    demo.add_argument("--seed", type=int, default=7, help="seed of the demo source")
    sub.add_parser(
        "refresh",
        help="only the twins' refresh job (what its schedule runs), on the warehouse as is",
    )
    sub.add_parser("init-home", help="create $SYNTH_HOME and its dagster.yaml, print its path")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo(scale=args.scale, seed=args.seed)
    if args.command == "refresh":
        return run_demo(scale=None, seed=0)
    root = Path(os.environ.get("SYNTH_HOME") or PROJECT_ROOT / ".synth").resolve()
    dagster_home = prepare_dagster_home(root)
    # `make dev` starts the webserver and the daemon together; create the SQLite storages first,
    # or both may stamp a fresh database's schema version and every later open fails.
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)):
        pass
    print(dagster_home)
    return 0


def _exit(code: int) -> None:
    """Exit without the interpreter's last garbage collections, which walk every object the
    run's libraries left (~0.9 million) several times: 2.6 s after a run on 2 cores, a quarter
    of a no-op refresh's command. :func:`gc.freeze` takes the objects out of their reach;
    objects are still freed as the modules are torn down and every ``atexit`` hook runs, so
    only cyclic garbage left at exit stays unreclaimed, as :func:`os._exit` would leave all."""
    sys.stdout.flush()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())


def refresh_job():
    """The example's refresh job, importable by name: `dg.reconstructable(refresh_job)` lets
    `execute_job` run it on the multiprocess executor (each step re-imports it)."""
    from bank_example.definitions import defs as load_defs

    return load_defs().resolve_job_def(REFRESH_JOB)
