"""Multi-table strategies on the demo bank: SDV's HMA (the reference) versus independent
per-table synthesis with re-keyed children (random and matched), side by side.

Each row: fit and sample time, and the group gates (integrity, cardinality, cross-table
trends) plus the child's own fidelity, all with this project's evaluation functions. HMA runs
on customers -> accounts (SDV 2.0 refuses the three-table chain); the independent strategy
also runs on the whole chain and on a larger bank to show how it scales.

Then the airline star schema of `tests/star.py` (issue 14: two reference dimensions, a
synthesized one with natural keys, a fact table with four foreign keys and real orphans) at
50,000 and 300,000 flights: the platform end to end through Dagster as a user runs it (times
from the run's step stats, scores from the gates' records), and SDV's HMA on the same four
tables within a time budget, both scored by the same functions.

    python bench/run.py --only multitable
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from bank_example.generator import DemoSize, generate_bank
from bench.report import Table, write_result
from synth_platform.lib.evaluation import evaluate_fidelity
from synth_platform.lib.metadata import TableMetadata, derive_metadata
from synth_platform.lib.multitable import (
    TableGroup,
    evaluate_cardinality,
    evaluate_cross_table_trends,
    evaluate_integrity,
    fit_hma,
    groups_from_specs,
    rekey_children,
    sample_hma,
    sdv_multi_metadata,
    split_group,
)
from synth_platform.lib.specs import ModelSpec
from synth_platform.lib.synthesis import fit_synthesizer, sample_batches

SEED = 42


def _demo_specs() -> list[ModelSpec]:
    from tests.example import example_specs

    return example_specs()


def _metadata(
    group: TableGroup, frames: Mapping[str, pd.DataFrame], models: Mapping[str, ModelSpec]
) -> dict[str, tuple[TableMetadata, dict]]:
    return {
        t: derive_metadata(
            data=frames[t],
            model=models[t],
            foreign_keys=tuple(r.child_column for r in group.relationships if r.child == t),
        )
        for t in group.tables
    }


def _table_fidelity(real: pd.DataFrame, synthetic: pd.DataFrame, meta: TableMetadata) -> Any:
    """The single-table fidelity of one table, over its metadata's value columns."""
    return evaluate_fidelity(
        real=real,
        synthetic=synthetic,
        numeric=list(meta.numeric),
        datetime=list(meta.datetime),
        categorical=list(meta.categorical),
    )


def _scores(
    group: TableGroup,
    real: Mapping[str, pd.DataFrame],
    synthetic: Mapping[str, pd.DataFrame],
    metas: Mapping[str, TableMetadata],
) -> dict[str, float]:
    integrity = evaluate_integrity(group=group, synthetic=synthetic)
    cardinality = evaluate_cardinality(group=group, real=real, synthetic=synthetic)
    trends = evaluate_cross_table_trends(group=group, real=real, synthetic=synthetic, tables=metas)
    child = group.relationships[-1].child
    fidelity = _table_fidelity(real[child], synthetic[child], metas[child])
    return {
        "integrity": min(r.share for r in integrity.values()),
        "cardinality": min(r.score for r in cardinality.values()),
        "cross_table": min(
            r.counted_score if r.counted_score == r.counted_score else r.score
            for r in trends.values()
        ),
        "child_fidelity": fidelity.overall,
    }


def _independent(
    group: TableGroup,
    train: Mapping[str, pd.DataFrame],
    real: Mapping[str, pd.DataFrame],
    models: Mapping[str, ModelSpec],
    metas: Mapping[str, tuple[TableMetadata, dict]],
    matched: bool,
) -> tuple[float, float, float, dict[str, pd.DataFrame]]:
    start = time.perf_counter()
    fitted = {
        t: fit_synthesizer(
            train=train[t], metadata=metas[t][0], sdv_metadata=metas[t][1], spec=models[t].spec
        ).synthesizer
        for t in group.tables
    }
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    sampled = {}
    for t in group.tables:
        batches = sample_batches(
            synthesizer=fitted[t], table=t, rows=len(real[t]), seed=SEED, batch_size=50_000
        )
        sampled[t] = pd.concat(list(batches()), ignore_index=True)
    sample_s = time.perf_counter() - start
    start = time.perf_counter()
    out = rekey_children(
        group=group,
        real=real,
        synthetic=sampled,
        seed=SEED,
        profiles={t: metas[t][0] for t in group.tables} if matched else None,
    )
    return fit_s, sample_s, time.perf_counter() - start, out


def _hma(
    group: TableGroup,
    train: Mapping[str, pd.DataFrame],
    metas: Mapping[str, tuple[TableMetadata, dict]],
) -> tuple[float, float, float, dict[str, pd.DataFrame]]:
    multi = sdv_multi_metadata(group, train, {t: metas[t][1] for t in group.tables})
    fit = fit_hma(group=group, frames=train, metadata=multi, seed=SEED)
    start = time.perf_counter()
    out = sample_hma(synthesizer=fit.synthesizer, scale=1.0, seed=SEED)
    return fit.fit_seconds, time.perf_counter() - start, 0.0, out


def _bank_section(quick: bool) -> tuple[Table, list[str]]:
    """Strategies side by side on the demo bank."""
    specs = _demo_specs()
    models = {m.name: m for m in specs}
    (chain,) = groups_from_specs(specs)
    pair = TableGroup("customers", chain.tables[:2], chain.relationships[:1])
    base = 300 if quick else 1_000
    table = Table(
        [
            "group",
            "rows (real)",
            "strategy",
            "fit (s)",
            "sample (s)",
            "keys (s)",
            "integrity",
            "cardinality",
            "cross-table trends",
            "child fidelity",
        ]  # fmt: skip
    )
    runs = [(pair, base, "hma"), (pair, base, "independent, random keys"),
            (pair, base, "independent, matched keys"), (chain, base, "independent, random keys"),
            (chain, base, "independent, matched keys"),
            (chain, base * 5, "independent, matched keys")]  # fmt: skip
    banks: dict[int, dict[str, pd.DataFrame]] = {}
    for group, customers, strategy in runs:
        if customers not in banks:
            banks[customers] = generate_bank(size=DemoSize(customers=customers), seed=7)
        bank = banks[customers]
        real = {t: bank[t] for t in group.tables}
        metas = _metadata(group, real, models)
        real = {t: real[t][list(metas[t][0].columns)] for t in group.tables}
        train, _ = split_group(group=group, frames=real, holdout=0.2, seed=SEED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if strategy == "hma":
                fit_s, sample_s, keys_s, synthetic = _hma(group, train, metas)
            else:
                fit_s, sample_s, keys_s, synthetic = _independent(
                    group, train, real, models, metas, matched="matched" in strategy
                )
        scores = _scores(group, real, synthetic, {t: metas[t][0] for t in group.tables})
        table.add(
            [
                " -> ".join(group.tables),
                f"{sum(len(f) for f in real.values()):,}",
                "SDV HMA (reference)" if strategy == "hma" else strategy,
                fit_s,
                sample_s,
                keys_s,
                scores["integrity"],
                scores["cardinality"],
                scores["cross_table"],
                scores["child_fidelity"],
            ]  # fmt: skip
        )
    notes = [
        "Scores: integrity = share of child keys that resolve; cardinality = 1 - KS of children "
        "per parent (SDMetrics CardinalityShapeSimilarity), worst relationship; cross-table "
        "trends = Column Pair Trends over each join's child x parent pairs with a real trend, "
        "worst relationship; child fidelity = the last child's QualityReport-style score.",
        "Gate thresholds (defaults): integrity 1.0, cardinality 0.8, cross-table 0.7, "
        "fidelity per table (accounts 0.75, transactions 0.70).",
        "HMA: SDV 2.0 HMASynthesizer with Gaussian copulas (it refuses gaussian_kde, which the "
        "demo's accounts table asks for), fitted on a family-preserving split.",
        "Independent: each table's own synthesizer from its dbt meta, then children re-keyed to "
        "synthetic parents; 'matched' pairs them by profile (nearest real parent/child), "
        "'random' draws parents at random with real children-per-parent counts.",
        "Times: fit = all synthesizers of the group; sample = every table's rows (HMA: its "
        "own keys included); keys = re-keying the children (independent strategy only).",
        f"Seed {SEED}.",
    ]
    return table, notes


# ------------------------------------------------------------------------- star schema

#: nycflights13's dimensions: 1,458 airports, 3,322 planes (16 carriers, fixed).
STAR_DIMENSIONS = {"airports": 1_458, "planes": 3_322}
STAR_QUICK_DIMENSIONS = {"airports": 300, "planes": 600}
HMA_BUDGET_S = 15 * 60
HMA_QUICK_BUDGET_S = 5 * 60
_OUR_CHECKS = ("_fidelity", "_privacy", "_validity", "_integrity", "_cardinality", "_cross_table")


def _star_real(flights: int, dims: Mapping[str, int]) -> dict[str, pd.DataFrame]:
    from tests.star import generate_star

    return generate_star(
        flights=flights, airports=dims["airports"], planes=dims["planes"], seed=SEED
    )


def _star_group(project: Path) -> tuple[TableGroup, dict[str, ModelSpec]]:
    """The whole star as one group (reference dimensions included as parents), from the dbt
    manifest as the platform reads it: every foreign key of `flights`, orphan flags included."""
    from synth_platform.lib.specs import load_manifest, specs_from_manifest

    specs = specs_from_manifest(load_manifest(project / "target" / "manifest.json"))
    (group,) = groups_from_specs(specs)
    rels = tuple(replace(r, reference=False) for r in group.checked_relationships)
    parents = sorted({r.parent for r in rels} - set(group.tables))
    star = TableGroup("+".join([*parents, *group.roots]), (*parents, *group.tables), rels)
    return star, {m.name: m for m in specs}


def _star_scores(
    group: TableGroup,
    real: Mapping[str, pd.DataFrame],
    synthetic: Mapping[str, pd.DataFrame],
    metas: Mapping[str, TableMetadata],
) -> dict[str, float]:
    """The group gates' measures on one star, with the same functions for every strategy:
    integrity of the error-severity keys (worst share), orphan share gap of the warn-severity
    keys (worst |synthetic - real|), cardinality and cross-table trends (worst relationship),
    and the fact table's fidelity on its value columns."""
    integrity = evaluate_integrity(group=group, synthetic=synthetic)
    real_integrity = evaluate_integrity(group=group, synthetic=real)
    cardinality = evaluate_cardinality(group=group, real=real, synthetic=synthetic)
    trends = evaluate_cross_table_trends(group=group, real=real, synthetic=synthetic, tables=metas)
    fact = group.tables[-1]
    fidelity = _table_fidelity(real[fact], synthetic[fact], metas[fact])
    rels = group.relationships
    return {
        "integrity": min(integrity[r.key].share for r in rels if not r.orphans),
        "orphan_gap": max(
            abs(real_integrity[r.key].share - integrity[r.key].share) for r in rels if r.orphans
        ),
        "cardinality": min(cardinality[r.key].score for r in rels),
        "cross_table": min(
            t.counted_score if t.counted_score == t.counted_score else t.score
            for t in (trends[r.key] for r in rels)
        ),
        "fidelity": fidelity.overall,
    }


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (Linux reports KB). Children are left out:
    a forked child's peak includes its parent's memory at the fork, so it says little."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def star_platform_run(*, flights: int, dims: Mapping[str, int], root: str) -> dict[str, Any]:
    """One end-to-end refresh of the star through Dagster, as a user runs it: the warehouse
    and dbt project written, the definitions loaded, job `synthetic_refresh` executed in
    process on a fresh instance. Times from the instance's step stats; scores from the gates'
    own records, plus :func:`_star_scores` on the published twin."""
    import dagster as dg

    from synth_platform.lib.publish import connect
    from tests.star import star_definitions, write_star_project

    base = Path(root)
    real = _star_real(flights, dims)
    project = write_star_project(base, real)
    home = base / "home"
    start = time.perf_counter()
    defs = star_definitions(project, home)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("synthetic_refresh").execute_in_process(
        instance=instance, raise_on_error=False
    )
    end_to_end = time.perf_counter() - start
    steps: dict[str, float] = {}
    for stat in instance.get_run_step_stats(result.run_id):
        if stat.start_time is not None and stat.end_time is not None:
            steps[stat.step_key] = stat.end_time - stat.start_time

    def seconds(match: Callable[[str], bool]) -> float:
        return sum(v for k, v in steps.items() if match(k))

    failed_steps = [
        f"{e.step_key}: {e.event_specific_data.error.message.strip().splitlines()[-1]}"
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    ]
    failed_checks = {
        e.check_name: e.metadata["failures"].value if "failures" in e.metadata else "failed"
        for e in result.get_asset_check_evaluations()
        if e.check_name.endswith(_OUR_CHECKS) and not e.passed
    }
    try:
        with connect(home / "public") as con:
            published = sorted(
                t for (t,) in con.execute("select table_name from releases").fetchall()
            )
    except Exception as exc:  # noqa: BLE001 - nothing published is a result to report
        published, failed_steps = [], [*failed_steps, f"public store: {exc}"]
    group_dir = next((home / "private" / "_groups").glob("*/"))
    gates = {
        kind: json.loads((group_dir / "gates" / f"flights.{kind}.json").read_text())
        for kind in ("integrity", "cardinality", "cross_table")
        if (group_dir / "gates" / f"flights.{kind}.json").exists()
    }
    fidelity_path = home / "private" / "flights" / "gates" / "fidelity.json"
    fidelity = json.loads(fidelity_path.read_text()) if fidelity_path.exists() else None
    integrity = gates.get("integrity", {}).get("metrics", {})
    out: dict[str, Any] = {
        "flights": flights,
        "rows": sum(len(f) for f in real.values()),
        "success": result.success,
        "end_to_end": end_to_end,
        "dbt": seconds(lambda k: k == "star_dbt"),
        "fit": seconds(lambda k: k.endswith("_group_synthesizer")),
        "sample": seconds(lambda k: k.endswith("_group_synthetic")),
        "rekey": json.loads((group_dir / "candidate.json").read_text())["rekey_seconds"],
        "gates": seconds(lambda k: k.endswith(_OUR_CHECKS)),
        "other": seconds(
            lambda k: (
                not k.endswith(("_group_synthesizer", "_group_synthetic", *_OUR_CHECKS))
                and k != "star_dbt"
            )
        ),
        "strategy": json.loads((group_dir / "strategy.json").read_text())["strategy"],
        "published": published,
        "failed_steps": failed_steps,
        "failed_checks": failed_checks,
        "gate": {
            "integrity": min(
                (v for k, v in integrity.items() if k.startswith("integrity__")), default=None
            ),
            "orphan_gap": max(
                (v for k, v in integrity.items() if k.startswith("orphan_share_gap__")),
                default=None,
            ),
            "cardinality": gates.get("cardinality", {}).get("score"),
            "cross_table": gates.get("cross_table", {}).get("score"),
            "fidelity": None if fidelity is None else fidelity["score"],
        },
    }
    if set(published) == set(real):
        group, models = _star_group(project)
        metas = _metadata(group, real, models)
        with connect(home / "public") as con:
            twin = {t: con.sql(f"select * from {t}").df() for t in group.tables}
        cols = {t: list(metas[t][0].columns) for t in group.tables}
        out["comparable"] = _star_scores(
            group,
            {t: real[t][cols[t]] for t in group.tables},
            {t: twin[t][cols[t]] for t in group.tables},
            {t: metas[t][0] for t in group.tables},
        )
    out["rss_mb"] = _peak_rss_mb()
    return out


def _without_orphans(
    group: TableGroup, frames: Mapping[str, pd.DataFrame]
) -> dict[str, pd.DataFrame]:
    """Orphan foreign keys set to null: the real data minus what HMA refuses."""
    out = dict(frames)
    for r in group.relationships:
        child = out[r.child].copy()
        dangling = child[r.child_column].notna() & ~child[r.child_column].isin(
            out[r.parent][r.parent_column]
        )
        child.loc[dangling, r.child_column] = None
        out[r.child] = child
    return out


def _condensed(message: str) -> str:
    """SDV's refusal on one line: its first line and its ``Error:`` lines (the sample of
    offending values and the hints left out)."""
    lines = message.splitlines()
    kept = [lines[0], *(line.strip() for line in lines[1:] if line.startswith("Error:"))]
    return " ".join(kept).replace("|", "/")


def star_hma_run(*, flights: int, dims: Mapping[str, int], project: str) -> dict[str, Any]:
    """SDV's HMASynthesizer on the four tables (Gaussian copulas), fitted on a family-preserving
    split; first on the real data as it is, then, if SDV refuses it, with the orphan keys
    nulled (what HMA can model). Scored by :func:`_star_scores` against the full real data."""
    from synth_platform.lib.errors import TrainingError

    real = _star_real(flights, dims)
    group, models = _star_group(Path(project))
    metas = _metadata(group, real, models)
    real = {t: real[t][list(metas[t][0].columns)] for t in group.tables}
    out: dict[str, Any] = {"flights": flights, "rows": sum(len(f) for f in real.values())}
    for variant, frames in (("as is", real), ("orphan keys nulled", None)):
        if frames is None:
            frames = _without_orphans(group, real)
        train, _ = split_group(group=group, frames=frames, holdout=0.2, seed=SEED)
        multi = sdv_multi_metadata(group, train, {t: metas[t][1] for t in group.tables})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fit = fit_hma(group=group, frames=train, metadata=multi, seed=SEED)
            except TrainingError as exc:
                out.setdefault("refusals", []).append(_condensed(str(exc)))
                _report_progress(out | {"stage": "fitting"})
                continue
            out |= {"variant": variant, "fit": fit.fit_seconds}
            _report_progress(out | {"stage": "sampling"})
            start = time.perf_counter()
            synthetic = sample_hma(synthesizer=fit.synthesizer, scale=1.0, seed=SEED)
        out["sample"] = time.perf_counter() - start
        _report_progress(out | {"stage": "scoring"})
        out["comparable"] = _star_scores(
            group, real, synthetic, {t: metas[t][0] for t in group.tables}
        )
        break
    out["rss_mb"] = _peak_rss_mb()
    return out


_progress_path: Path | None = None  # set in a spawned worker: where it reports its stage


def _report_progress(state: Mapping[str, Any]) -> None:
    """Record how far a worker got, for :func:`_isolated` to report if it runs out of time."""
    if _progress_path is not None:
        _progress_path.write_text(json.dumps(dict(state), default=float))


def _child(name: str, kwargs: Mapping[str, Any], path: str) -> None:
    global _progress_path
    _progress_path = Path(path).with_name("progress.json")
    result = globals()[name](**kwargs)
    Path(path).write_text(json.dumps(result, default=float))


def _isolated(
    fn: Callable[..., dict[str, Any]], *, timeout: float | None, **kwargs: Any
) -> dict[str, Any]:
    """``fn(**kwargs)`` in a spawned process (its own memory, peak RSS and time budget).
    When it runs out of ``timeout`` seconds it is killed, and the result is what it last
    reported (:func:`_report_progress`) with ``timed_out`` set to the seconds it ran."""
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "result.json"
        process = ctx.Process(target=_child, args=(fn.__name__, kwargs, str(path)))
        start = time.perf_counter()
        process.start()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
            progress = path.with_name("progress.json")
            partial = json.loads(progress.read_text()) if progress.exists() else {}
            return partial | {"timed_out": time.perf_counter() - start}
        if process.exitcode != 0:
            raise RuntimeError(f"{fn.__name__}({kwargs}) exited with code {process.exitcode}")
        return json.loads(path.read_text())


def _star_tables(
    platform: list[dict[str, Any]], hma: list[tuple[int, dict[str, Any] | None]]
) -> tuple[Table, Table]:
    runs = Table(
        [
            "flights",
            "rows (4 tables)",
            "strategy",
            "end to end (s)",
            "dbt build (s)",
            "fit (s)",
            "sample + re-key (s)",
            "re-key (s)",
            "gates (s)",
            "other steps (s)",
            "published",
            "integrity",
            "orphan share gap",
            "cardinality",
            "cross-table trends",
            "flights fidelity",
            "peak RSS (MB)",
        ]  # fmt: skip
    )
    for r in platform:
        g = r["gate"]
        failed = sorted(r["failed_checks"]) + r["failed_steps"]
        published = "yes" if r["success"] and len(r["published"]) == 4 else "no"
        if failed:
            published += " (" + "; ".join(failed) + ")"
        runs.add(
            [
                f"{r['flights']:,}",
                f"{r['rows']:,}",
                r["strategy"],
                r["end_to_end"],
                r["dbt"],
                r["fit"],
                r["sample"],
                r["rekey"],
                r["gates"],
                r["other"],
                published,
                g["integrity"],
                g["orphan_gap"],
                g["cardinality"],
                g["cross_table"],
                g["fidelity"],
                f"{r['rss_mb']:,.0f}",
            ]  # fmt: skip
        )
    side = Table(
        [
            "flights",
            "strategy",
            "fit (s)",
            "sample (s)",
            "integrity",
            "orphan share gap",
            "cardinality",
            "cross-table trends",
            "flights fidelity (value columns)",
            "peak RSS (MB)",
        ]  # fmt: skip
    )
    for r in platform:
        c = r.get("comparable")
        if c:
            side.add(
                [f"{r['flights']:,}", f"platform ({r['strategy']})", r["fit"], r["sample"],
                 c["integrity"], c["orphan_gap"], c["cardinality"], c["cross_table"],
                 c["fidelity"], f"{r['rss_mb']:,.0f}"]
            )  # fmt: skip
    for flights, r in hma:
        if r is None:
            side.add([f"{flights:,}", "SDV HMA: not attempted (timed out at a smaller size)",
                      *[None] * 8])  # fmt: skip
            continue
        label = "SDV HMA (reference)"
        if "variant" in r:
            label += f", {r['variant']}"
        if r.get("refusals"):
            label += " (refused as is: " + " / ".join(r["refusals"]) + ")"
        if "timed_out" in r:
            label += (
                f": timed out after {r['timed_out']:,.0f} s while {r.get('stage', 'preparing')} "
                "(killed)"
            )
        c = r.get("comparable", {})
        side.add(
            [f"{flights:,}", label, r.get("fit"), r.get("sample"), c.get("integrity"),
             c.get("orphan_gap"), c.get("cardinality"), c.get("cross_table"), c.get("fidelity"),
             f"{r['rss_mb']:,.0f}" if "rss_mb" in r else None]
        )  # fmt: skip
    return runs, side


def _star_section(quick: bool, write: Callable[[tuple[str, list[Table], list[str]]], None]) -> None:
    """The airline star at 50k and 300k flights: the platform end to end, then SDV's HMA."""
    sizes = (5_000,) if quick else (50_000, 300_000)
    dims = STAR_QUICK_DIMENSIONS if quick else STAR_DIMENSIONS
    budget = HMA_QUICK_BUDGET_S if quick else HMA_BUDGET_S
    platform: list[dict[str, Any]] = []
    hma: list[tuple[int, dict[str, Any] | None]] = []
    notes = [
        f"Data: `tests/star.py` (seed {SEED}): 16 carriers and {dims['airports']:,} airports "
        f"(`mode: reference`), {dims['planes']:,} planes (synthesized; natural tail-number "
        "keys), flights with 4 foreign keys (carrier, origin: error severity; dest 1% and "
        "tailnum 2% orphans at severity warn).",
        "Platform: `write_star_project` + `star_definitions`, job `synthetic_refresh` executed "
        "in process on a fresh `DagsterInstance.ephemeral()` and home in a temp dir, one "
        "spawned process per size. End to end = definitions (dbt parse) + the job. Step "
        "seconds from the instance's step stats: fit = `*_group_synthesizer`, sample + re-key "
        "= `*_group_synthetic` (re-key alone: `rekey_seconds` in the group's "
        "`candidate.json`), gates = every table and group check step, other = split, "
        "reference-table and publish steps.",
        "Platform scores in the first table are the gates' own records (`_groups/<group>/"
        "gates/flights.*.json`, `flights/gates/fidelity.json`; the real side is the train "
        "split). integrity = worst share of resolving error-severity keys (threshold 1.0); "
        "orphan share gap = worst |synthetic - real| orphan share of the warn-severity keys "
        "(bound 0.01); cardinality and cross-table trends = worst foreign key (0.8, 0.7); "
        "flights fidelity = the gate's overall score incl. the reference codes (0.8).",
        "Second table: every strategy scored by the same functions against the full real "
        "tables (published twin for the platform, HMA's output for HMA), with every foreign "
        "key as a key: flights fidelity over its value columns only (HMA synthesizes the "
        "reference tables too, so its codes are not the real ones).",
        f"HMA: SDV HMASynthesizer (Gaussian copulas) via `fit_hma`/`sample_hma` on all four "
        f"tables, family-preserving split (holdout 0.2), in a spawned process with a "
        f"{budget // 60}-minute budget per size; a size is not attempted once a smaller one "
        "timed out. SDV requires every foreign key to resolve, so the real data with orphans "
        "is tried first and, when refused, retried with the orphan keys set to null.",
        "Peak RSS: of the process running the job (Dagster's in-process executor; dbt runs "
        "as its child and is not counted) or HMA.",
    ]

    def flush() -> None:
        tables = _star_tables(platform, hma)
        write(("Star schema (airline, 4 tables, several parents per child)", list(tables), notes))

    hma_timed_out = False
    with tempfile.TemporaryDirectory(prefix="bench-star-") as tmp:
        for flights in sizes:
            root = Path(tmp) / f"flights_{flights}"
            run = _isolated(
                star_platform_run, timeout=None, flights=flights, dims=dims, root=str(root)
            )
            platform.append(run)
            flush()
            if hma_timed_out:
                hma.append((flights, None))
            else:
                result = _isolated(
                    star_hma_run, timeout=budget, flights=flights, dims=dims,
                    project=str(root / "dbt_project"),
                )  # fmt: skip
                hma_timed_out = "timed_out" in result
                hma.append((flights, result))
            flush()


def bench_multitable(quick: bool) -> str:
    """The demo bank's strategies side by side, then the airline star schema."""
    bank, bank_notes = _bank_section(quick)
    title = "Multi-table strategies: demo bank and airline star schema"
    text = write_result("multitable", title, bank, bank_notes, quick)

    def write(section: tuple[str, list[Table], list[str]]) -> None:
        nonlocal text
        text = write_result("multitable", title, bank, bank_notes, quick, sections=[section])

    _star_section(quick, write)
    return text


BENCHMARKS = {"multitable": bench_multitable}
