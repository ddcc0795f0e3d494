"""The one verdict function of every gate (table and group): fails closed, blocks nothing by
accident, never drops a bound, and names columns and kinds of violation but never a value."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synth_platform.lib import expectations as gx
from synth_platform.lib import group as G
from synth_platform.lib import lifecycle
from synth_platform.lib.home import SynthHome
from synth_platform.lib.metadata import TableMetadata
from synth_platform.lib.specs import ModelSpec, TableSpec, Thresholds
from synth_platform.lib.verdict import (
    RULE,
    STRUCTURAL_REASONS,
    Bound,
    NotApplicable,
    NotApplicableReason,
    as_metric,
    bounds_from_suite,
    decide,
    row_findings,
)

NA = NotApplicableReason
NON_STRUCTURAL = [r for r in NotApplicableReason if r not in STRUCTURAL_REASONS]
TABLE_GATES = ("fidelity", "privacy", "validity")
GROUP_GATES = G.GROUP_GATE_KINDS
ALL_GATES = TABLE_GATES + GROUP_GATES


# ----------------------------------------------------------------------------- the gates


def _bounds(gate: str, thresholds: Thresholds | None = None) -> list[Bound]:
    """The bounds a gate's generated suite holds (as `evaluate_gate`/`evaluate_group_gate`
    load them)."""
    thresholds = thresholds or Thresholds()
    if gate in GROUP_GATES:
        return bounds_from_suite(G._metric_suite("child", gate, ["parent_id"], thresholds))
    kind, metrics = {
        "fidelity": ("fidelity", gx.FIDELITY_METRICS),
        "privacy": ("privacy", gx.PRIVACY_METRICS),
        "validity": ("diagnostic", gx.DIAGNOSTIC_METRICS),
    }[gate]
    return bounds_from_suite(gx._metric_suite("t", kind, metrics, thresholds))


def _passing(bounds: list[Bound]) -> dict[str, float]:
    """A value inside every bound (reported metrics get a plausible number)."""
    out = {}
    for b in bounds:
        if b.min_value is not None:
            out[b.metric] = min(1.0, b.min_value + 0.05) if b.min_value < 1 else b.min_value
        elif b.max_value is not None:
            out[b.metric] = b.max_value
        else:
            out[b.metric] = 0.1
    return out


def _bounded(gate: str) -> list[str]:
    return [b.metric for b in _bounds(gate) if b.bounded]


def _cases(gates):
    return [(g, m) for g in gates for m in _bounded(g)]


def test_the_rule_lists_every_reason_once_as_structural_or_not():
    for reason in NotApplicableReason:
        assert reason.value in RULE
    assert "FAILS" in RULE and "skipped only when its reason is structural" in RULE


@pytest.mark.parametrize("gate", ALL_GATES)
def test_good_numbers_pass_every_gate(gate):
    bounds = _bounds(gate)
    verdict = decide(gate=gate, metrics=_passing(bounds), bounds=bounds)
    assert verdict.passed, verdict.failures
    assert {c.status for c in verdict.checks} <= {"passed", "reported"}
    assert len(verdict.checks) == len(bounds)  # every bound is listed


@pytest.mark.parametrize("gate", ALL_GATES)
def test_a_value_on_the_bound_passes(gate):
    bounds = _bounds(gate)
    metrics = {b.metric: b.threshold if b.bounded else 0.5 for b in bounds}
    assert decide(gate=gate, metrics=metrics, bounds=bounds).passed


@pytest.mark.parametrize(
    "bad",
    [math.nan, None, math.inf, -math.inf, np.float64("nan"), "0.9", NotApplicable(NA.ALL_NULL)],
    ids=["nan", "none", "inf", "-inf", "np.nan", "text", "na-all-null"],
)
@pytest.mark.parametrize(("gate", "metric"), _cases(ALL_GATES))
def test_a_bounded_metric_without_a_number_fails_by_name(gate, metric, bad):
    bounds = _bounds(gate)
    verdict = decide(gate=gate, metrics=_passing(bounds) | {metric: bad}, bounds=bounds)
    assert not verdict.passed
    assert any(f.startswith(f"{metric}: ") for f in verdict.failures), verdict.failures
    (check,) = [c for c in verdict.checks if c.metric == metric]
    assert check.status.startswith("failed, not applicable: ") and check.value is None
    assert check.threshold is not None  # the bound is shown, not dropped


@pytest.mark.parametrize(("gate", "metric"), _cases(ALL_GATES))
def test_a_bounded_metric_missing_from_the_run_fails(gate, metric):
    bounds = _bounds(gate)
    metrics = _passing(bounds)
    del metrics[metric]
    verdict = decide(gate=gate, metrics=metrics, bounds=bounds)
    assert not verdict.passed
    assert f"{metric}: {NA.NOT_COMPUTED.value}" in " ".join(verdict.failures)


@pytest.mark.parametrize("reason", NON_STRUCTURAL, ids=lambda r: r.name)
@pytest.mark.parametrize("gate", ALL_GATES)
def test_every_non_structural_reason_fails_a_bound(gate, reason):
    bounds = _bounds(gate)
    metric = _bounded(gate)[0]
    verdict = decide(
        gate=gate, metrics=_passing(bounds) | {metric: NotApplicable(reason)}, bounds=bounds
    )
    assert not verdict.passed
    assert verdict.failures[0].startswith(f"{metric}: {reason.value}")


@pytest.mark.parametrize("reason", sorted(STRUCTURAL_REASONS), ids=lambda r: r.name)
@pytest.mark.parametrize(("gate", "metric"), _cases(ALL_GATES))
def test_a_structural_reason_skips_the_bound_and_shows_why(gate, metric, reason):
    bounds = _bounds(gate)
    verdict = decide(
        gate=gate, metrics=_passing(bounds) | {metric: NotApplicable(reason)}, bounds=bounds
    )
    has_other_number = any(b.metric != metric for b in bounds)
    assert verdict.passed is has_other_number, verdict.failures
    (check,) = [c for c in verdict.checks if c.metric == metric]
    assert check.status == f"not applicable: {reason.value}"
    assert check.rule == "structural: bound skipped" and check.threshold is not None
    assert verdict.not_applicable == {metric: reason.value}


@pytest.mark.parametrize("gate", ALL_GATES)
def test_a_gate_with_nothing_applicable_fails(gate):
    bounds = _bounds(gate)
    for metrics in (
        {},  # empty run
        {b.metric: math.nan for b in bounds},  # all NaN
        {b.metric: NotApplicable(NA.NO_PAIR_WITH_REAL_TREND) for b in bounds},  # all structural
    ):
        verdict = decide(gate=gate, metrics=metrics, bounds=bounds)
        assert not verdict.passed
        assert any(f.startswith(f"{gate}: nothing applicable") for f in verdict.failures) or any(
            "not computed" in f for f in verdict.failures
        )
    assert not decide(gate=gate, metrics={}, bounds=[]).passed  # no bound, no number


def test_structural_bounds_pass_on_a_reported_number_and_fail_without_one():
    bounds = [Bound("column_pair_trends", min_value=0.7), Bound("column_shapes")]
    skipped = {"column_pair_trends": NotApplicable(NA.NO_PAIR_WITH_REAL_TREND)}
    assert decide(gate="fidelity", metrics=skipped | {"column_shapes": 0.9}, bounds=bounds).passed
    nothing = decide(gate="fidelity", metrics=skipped | {"column_shapes": math.nan}, bounds=bounds)
    assert not nothing.passed
    assert nothing.failures[0].startswith("fidelity: nothing applicable")


@pytest.mark.parametrize(("gate", "metric"), _cases(ALL_GATES))
def test_a_value_outside_its_bound_fails_naming_metric_and_column(gate, metric):
    bounds = _bounds(gate)
    b = next(b for b in bounds if b.metric == metric)
    outside = b.min_value - 0.25 if b.min_value is not None else b.max_value + 0.25
    verdict = decide(
        gate=gate, metrics=_passing(bounds) | {metric: outside}, bounds=bounds,
        subjects={metric: "worst column: amount"},
    )  # fmt: skip
    assert not verdict.passed
    (failure,) = verdict.failures
    side = "below the minimum" if b.min_value is not None else "above the maximum"
    assert failure.startswith(f"{metric}: {outside:.4g} {side}")
    assert failure.endswith("(worst column: amount)")


def test_reported_metrics_never_decide():
    bounds = [Bound("overall", min_value=0.8), Bound("linkability_risk")]
    for value in (math.nan, None, 0.99, NotApplicable(NA.ATTACKS_OFF)):
        verdict = decide(
            gate="privacy", metrics={"overall": 0.9, "linkability_risk": value}, bounds=bounds
        )
        assert verdict.passed
        (check,) = [c for c in verdict.checks if c.metric == "linkability_risk"]
        assert check.threshold is None and check.status.startswith("reported")


def test_findings_fail_the_gate_and_are_listed():
    bounds = _bounds("validity")
    verdict = decide(
        gate="validity", metrics=_passing(bounds), bounds=bounds,
        findings=["amount: values below the profiled minimum (12 rows)"],
    )  # fmt: skip
    assert not verdict.passed
    assert verdict.failures == ("amount: values below the profiled minimum (12 rows)",)


def test_as_metric_keeps_numbers_only():
    assert as_metric(3) == 3.0 and as_metric(np.int64(2)) == 2.0 and as_metric(True) == 1.0
    for bad in (math.nan, None, math.inf, "1", [1.0], np.float32("nan")):
        assert as_metric(bad) == NotApplicable(NA.NOT_COMPUTED)


def test_a_suite_bound_that_is_not_a_number_is_refused():
    from synth_platform.lib.errors import ProjectError

    suite = {"name": "t.fidelity", "expectations": [
        {"type": gx.BETWEEN, "kwargs": {"column": "overall", "min_value": "high"}}]}  # fmt: skip
    with pytest.raises(ProjectError, match="overall"):
        bounds_from_suite(suite)
    suite["expectations"][0] = {"type": "expect_column_mean_to_be_between",
                                "kwargs": {"column": "overall"}}  # fmt: skip
    with pytest.raises(ProjectError, match="not supported in a metric suite"):
        bounds_from_suite(suite)


# ------------------------------------------------------------------ row-level findings


def test_row_findings_name_the_column_and_kind_but_no_value():
    real = pd.DataFrame(
        {"amount": [12.5, 40.0, 99.75], "segment": ["gold", "silver", "gold"], "id": [1, 2, 3]}
    )
    suite = gx.validity_suite(
        table="t", real=real, not_null=frozenset({"amount"}),
        metadata=TableMetadata(table="t", primary_key="id", numeric=("amount",), datetime=(),
                               categorical=("segment",), pii={}, columns=("amount", "segment", "id")),
    )  # fmt: skip
    synth = pd.DataFrame(
        {"amount": [1.0, 2.0, 500.0, None], "segment": ["bronze", "gold", "x", "gold"],
         "id": [1, 1, 2, 3]}
    )  # fmt: skip
    outcome = gx.validate(suite=suite, data=synth)
    public, private = row_findings(outcome.outcomes, suite, synth)
    assert "amount: values below the profiled minimum (2 rows)" in public
    assert "amount: values above the profiled maximum (1 row)" in public
    assert "segment: categories outside the profiled set (2 rows)" in public
    assert "id: duplicate values (2 rows)" in public
    assert "amount: missing values (1 row)" in public
    shown = " ".join(public)
    for real_value in ("12.5", "99.75", "silver", "gold"):
        assert real_value not in shown
    assert any("12.5" in p for p in private)  # the details stay in the private report


# ------------------------------------------------------------- tables, through the engine


def _meta(frame: pd.DataFrame, *, key: str | None = "id") -> TableMetadata:
    cols = [c for c in frame.columns if c != key]
    numeric = tuple(c for c in cols if pd.api.types.is_numeric_dtype(frame[c]))
    dates = tuple(c for c in cols if pd.api.types.is_datetime64_any_dtype(frame[c]))
    cats = tuple(c for c in cols if c not in numeric and c not in dates)
    return TableMetadata(
        table="t", primary_key=key, numeric=numeric, datetime=dates, categorical=cats,
        pii={}, columns=tuple(frame.columns),
    )  # fmt: skip


def _model(name: str = "t", **spec) -> ModelSpec:
    return ModelSpec(
        name=name, unique_id=f"model.p.{name}", relation=f"main.{name}",
        spec=TableSpec(**spec), columns={},
    )  # fmt: skip


def _independent(n: int, seed: int, *, wide: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = {
        "id": np.arange(n),
        "amount": rng.normal(100, 20, n),
        "age": rng.integers(18, 90, n),
        "segment": rng.choice(["a", "b", "c", "d"], n),
        "flag": rng.choice(["y", "n"], n),
        "opened": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), "D"),
    }
    for i in range(wide):
        out[f"x{i:03d}"] = rng.normal(0, 1, n)
    return pd.DataFrame(out)


def _fidelity(real, synth, meta, model, thresholds: Thresholds | None = None):
    n_train = int(len(real) * 0.8)
    train, holdout = real.iloc[:n_train], real.iloc[n_train:]
    metrics, _, _, subjects = lifecycle._fidelity_metrics(
        real=real, train=train, holdout=holdout, synth=synth, meta=meta, model=model
    )
    bounds = _bounds("fidelity", thresholds or model.spec.thresholds)
    return metrics, decide(gate="fidelity", metrics=metrics, bounds=bounds, subjects=subjects)


@pytest.mark.parametrize(
    ("rows", "wide"), [(2000, 0), (400, 200)], ids=["2000-rows", "200-columns"]
)
def test_a_trend_free_table_is_scored_on_its_shapes_and_passes(rows, wide):
    real, synth = _independent(rows, 1, wide=wide), _independent(rows, 2, wide=wide)
    meta = _meta(real)
    thresholds = Thresholds(column_pair_trends=0.7)  # a bound on trends: structurally skipped
    metrics, verdict = _fidelity(real, synth, meta, _model(thresholds=thresholds))
    assert metrics["column_pair_trends"] == NotApplicable(NA.NO_PAIR_WITH_REAL_TREND)
    assert metrics["overall"] == pytest.approx(metrics["column_shapes"])
    assert metrics["column_shapes"] > 0.9
    assert verdict.passed, verdict.failures
    (trend,) = [c for c in verdict.checks if c.metric == "column_pair_trends"]
    assert trend.status == "not applicable: no column pair shows a trend in the real data"
    assert trend.threshold == 0.7 and trend.rule == "structural: bound skipped"


def test_a_16_row_lookup_table_passes_when_its_shapes_are_good():
    rng = np.random.default_rng(3)
    real = pd.DataFrame(
        {"id": np.arange(16), "code": [f"c{i:02d}" for i in range(16)],
         "region": rng.choice(["n", "s", "e", "w"], 16), "rate": rng.uniform(0, 1, 16)}
    )  # fmt: skip
    synth = real.sample(frac=1.0, random_state=0).reset_index(drop=True)
    metrics, verdict = _fidelity(real, synth, _meta(real), _model())
    assert verdict.passed, verdict.failures
    assert metrics["worst_column_shape"] == 1.0


def test_a_16_row_table_of_independent_columns_never_crashes_and_is_judged_on_shapes():
    real, synth = _independent(16, 4), _independent(16, 5)
    metrics, verdict = _fidelity(real, synth, _meta(real), _model())
    assert isinstance(metrics["column_shapes"], float)
    assert all(isinstance(c.passed, bool) for c in verdict.checks)


def test_a_single_column_table_passes_fidelity_and_its_privacy_does_not_crash():
    rng = np.random.default_rng(6)
    real = pd.DataFrame({"id": np.arange(300), "amount": rng.normal(0, 1, 300)})
    synth = pd.DataFrame({"id": np.arange(300), "amount": rng.normal(0, 1, 300)})
    meta, model = _meta(real), _model(attacks=True)
    metrics, verdict = _fidelity(real, synth, meta, model)
    assert metrics["column_pair_trends"] == NotApplicable(NA.ONE_MODELLED_COLUMN)
    assert verdict.passed, verdict.failures
    priv, _, _, _ = lifecycle._privacy_metrics(
        train=real.iloc[:240], holdout=real.iloc[240:], synth=synth, meta=meta, model=model
    )
    for attack in ("singling_out_risk", "linkability_risk", "inference_risk"):
        assert priv[attack] == NotApplicable(NA.ONE_MODELLED_COLUMN)
    assert isinstance(priv["dcr_share"], float)


def test_no_column_scored_is_not_a_perfect_worst_column():
    real = _independent(200, 7)
    synth = real.copy()
    for c in ("amount", "age", "segment", "flag", "opened"):
        synth[c] = None  # every column emptied by the candidate
    metrics, verdict = _fidelity(real, synth, _meta(real), _model())
    assert metrics["worst_column_shape"] == 0.0  # emptied columns score 0, never 1.0
    assert not verdict.passed
    assert any(
        f.startswith("worst_column_shape: 0 below the minimum 0.5") for f in verdict.failures
    )
    nothing = real.iloc[:0].copy()  # no row at all: nothing scored
    metrics, verdict = _fidelity(real, nothing, _meta(real), _model())
    assert metrics["worst_column_shape"] == NotApplicable(NA.NO_COLUMN_SCORED)
    assert not verdict.passed


def test_a_constant_candidate_column_fails_fidelity_naming_the_column():
    real, synth = _independent(1000, 8), _independent(1000, 9)
    synth["amount"] = 100.0
    _, verdict = _fidelity(real, synth, _meta(real), _model())
    assert not verdict.passed
    assert "(worst column: amount)" in " ".join(verdict.failures)


def test_a_real_trend_the_candidate_makes_undefined_counts_as_zero():
    rng = np.random.default_rng(10)
    x = rng.normal(0, 1, 500)
    real = pd.DataFrame({"id": np.arange(500), "x": x, "y": x + rng.normal(0, 0.1, 500)})
    synth = real.copy()
    synth["y"] = 1.0  # constant: SDMetrics drops the pair, the gate scores it 0
    metrics, _ = _fidelity(real, synth, _meta(real), _model())
    assert metrics["column_pair_trends"] == 0.0


def test_utility_without_target_is_structural_and_with_a_constant_target_too():
    real, synth = _independent(300, 11), _independent(300, 12)
    meta = _meta(real)
    # The dbt meta refuses a utility threshold without a target; a suite file can still hold one.
    metrics, verdict = _fidelity(real, synth, meta, _model(), Thresholds(utility=0.5))
    assert metrics["utility"] == NotApplicable(NA.NO_TARGET) and verdict.passed
    real["flag"] = synth["flag"] = "y"
    model = _model(target="flag", thresholds=Thresholds(utility=0.5))
    metrics, verdict = _fidelity(real, synth, meta, model)
    assert metrics["utility"] == NotApplicable(NA.CONSTANT_TARGET) and verdict.passed
    # Constant in the holdout only (the last 20% of rows here): too few rows, and it fails.
    real["flag"] = ["n"] * 10 + ["y"] * (len(real) - 10)
    metrics, verdict = _fidelity(real, synth, meta, model)
    assert metrics["utility"] == NotApplicable(NA.TOO_FEW_ROWS) and not verdict.passed


def test_a_utility_baseline_that_is_not_positive_fails_a_utility_bound():
    bounds = _bounds("fidelity", Thresholds(utility=0.5))
    metrics = _passing(bounds) | {"utility": NotApplicable(NA.BASELINE_NOT_POSITIVE)}
    verdict = decide(gate="fidelity", metrics=metrics, bounds=bounds)
    assert not verdict.passed
    assert verdict.failures[0].startswith("utility: the real-data baseline is not positive")


# ------------------------------------------------- an all-null candidate through the gates


def _stage(home: SynthHome, name: str, real: pd.DataFrame, synth: pd.DataFrame, meta) -> None:
    paths = lifecycle.paths_for(home, name)
    n_train = int(len(real) * 0.8)
    lifecycle._write_parquet(real.iloc[:n_train].reset_index(drop=True), paths.train)
    lifecycle._write_parquet(real.iloc[n_train:].reset_index(drop=True), paths.holdout)
    lifecycle._write_json(paths.metadata, {"table": meta.to_dict(), "sdv": {},
                                           "source_fingerprint": "x"})  # fmt: skip
    lifecycle._write_parquet(synth, paths.candidate)
    lifecycle._write_json(
        paths.candidate_info,
        {"candidate_id": lifecycle.content_id(paths.candidate), "rows": len(synth), "seed": 0,
         "sample_seconds": 0.0, "run_id": "r", "path": str(paths.candidate)},
    )  # fmt: skip


def test_an_all_null_candidate_with_thresholds_set_is_blocked(tmp_path):
    home = SynthHome(tmp_path / "home")
    real = _independent(500, 13)
    real["amount"] = real["amount"].where(real.index % 10 != 0)  # the real column has gaps
    synth = pd.DataFrame(
        {
            c: pd.Series(
                [None] * len(real),
                dtype="datetime64[ns]"
                if c == "opened"
                else "float64"
                if pd.api.types.is_numeric_dtype(real[c])
                else "object",
            )
            for c in real.columns
        }
    )  # every cell missing
    meta = _meta(real)
    thresholds = Thresholds(fidelity=0.8, column_shapes=0.8, column_pair_trends=0.7, utility=0.5)
    model = _model(target="segment", thresholds=thresholds)
    _stage(home, "t", real, synth, meta)
    verdicts = {
        kind: lifecycle.evaluate_gate(
            home=home, model=model, kind=kind, expectations_dir=tmp_path / "exp", tracking_uri=None
        )
        for kind in ("fidelity", "validity", "privacy")
    }
    assert not verdicts["fidelity"].passed
    assert not verdicts["validity"].passed
    fid = verdicts["fidelity"]
    assert fid.not_applicable["utility"] == NA.ALL_NULL.value
    assert fid.metrics["utility"] is None  # not applicable is stored as no number
    assert "utility: every value is missing" in " ".join(fid.failures)
    assert (
        "amount: every value is missing, the real column has values"
        in verdicts["validity"].failures
    )
    with pytest.raises(Exception, match="publication blocked"):
        lifecycle.approved_gates(home=home, table="t")
    # Every bound is listed with its status, none dropped.
    assert {c["metric"] for c in fid.checks} == set(gx.FIDELITY_METRICS)
    assert all(c["status"] for v in verdicts.values() for c in v.checks)


def test_a_failing_validity_gate_shows_no_real_value(tmp_path):
    home = SynthHome(tmp_path / "home")
    real = _independent(300, 14)
    synth = _independent(300, 15)
    synth.loc[:4, "amount"] = -1e6  # far below the real minimum
    synth.loc[:2, "segment"] = "zz"  # outside the real categories
    meta = _meta(real)
    _stage(home, "t", real, synth, meta)
    v = lifecycle.evaluate_gate(
        home=home, model=_model(), kind="validity", expectations_dir=tmp_path / "e",
        tracking_uri=None,
    )  # fmt: skip
    assert not v.passed
    below = [f for f in v.failures if f.startswith("amount: values below the profiled minimum (")]
    assert len(below) == 1 and int(below[0].split("(")[1].split()[0]) >= 5
    assert "segment: categories outside the profiled set (3 rows)" in v.failures
    shown = " ".join(v.failures) + repr(v.checks) + repr(v.metrics)
    lo, hi = real["amount"].min(), real["amount"].max()
    for real_value in (repr(float(lo)), repr(float(hi)), f"{lo:.4g}", f"{hi:.4g}"):
        assert real_value not in shown
    assert any(repr(float(lo)) in p for p in v.private_failures)


# ----------------------------------------------------------------------- group gates


def test_group_integrity_without_any_key_set_is_structural_only_if_the_real_rows_set_none():
    from synth_platform.lib.multitable import IntegrityResult, Relationship

    r = Relationship(child="c", child_column="p_id", parent="p", parent_column="id")
    none_set = IntegrityResult(share=1.0, orphans=0, checked=0, duplicate_parent_keys=0)
    synth = {"c": pd.DataFrame({"p_id": [None, None]}), "p": pd.DataFrame({"id": [1]})}
    real_with = {"c": pd.DataFrame({"p_id": [1, 1]}), "p": pd.DataFrame({"id": [1]})}
    real_without = {"c": pd.DataFrame({"p_id": [None, None]}), "p": pd.DataFrame({"id": [1]})}
    got = G._integrity_share(r, none_set, real=real_with, synthetic=synth)
    assert got == NotApplicable(NA.ALL_NULL)  # was a vacuous 1.0
    got = G._integrity_share(r, none_set, real=real_without, synthetic=synth)
    assert got == NotApplicable(NA.NO_FOREIGN_KEY)
    empty = {"c": synth["c"].iloc[:0], "p": synth["p"]}
    got = G._integrity_share(r, none_set, real=real_with, synthetic=empty)
    assert got == NotApplicable(NA.EMPTY_CANDIDATE)
    bounds = _bounds("integrity")
    metrics = {"integrity__parent_id": NotApplicable(NA.ALL_NULL), "orphans__parent_id": 0,
               "duplicate_parent_keys__parent_id": 0}  # fmt: skip
    assert not decide(gate="integrity", metrics=metrics, bounds=bounds).passed
    metrics["integrity__parent_id"] = NotApplicable(NA.NO_FOREIGN_KEY)
    assert decide(gate="integrity", metrics=metrics, bounds=bounds).passed


def test_cross_table_trends_scores_what_is_measurable():
    pairs = pd.DataFrame(
        {"column_1": ["c.a", "c.b"], "column_2": ["p.x", "p.x"],
         "metric": ["CorrelationSimilarity", "ContingencySimilarity"],
         "real_trend": [0.1, 0.05], "synthetic_trend": [0.1, 0.05], "score": [0.9, 0.8],
         "counted": [False, False]}
    )  # fmt: skip
    value, _ = G._cross_table_metric(pairs, all_pairs=0.85)  # trend-free: every pair
    assert value == 0.85
    value, _ = G._cross_table_metric(pairs.iloc[:0], all_pairs=math.nan)
    assert value == NotApplicable(NA.NO_CROSS_TABLE_PAIR)
    value, _ = G._cross_table_metric(pairs.assign(score=math.nan), all_pairs=math.nan)
    assert value == NotApplicable(NA.NOT_COMPUTED)
    trended = pairs.assign(real_trend=[0.9, 0.05], score=[math.nan, 0.8])
    value, worst = G._cross_table_metric(trended, all_pairs=0.8)
    assert value == 0.0 and worst == "worst pair: c.a x p.x"


def test_a_meta_threshold_reaches_a_group_suite(tmp_path):
    path = G.ensure_group_suite(
        directory=None, generated=tmp_path, table="child", kind="cardinality", foreign_keys=["parent_id"],
        thresholds=Thresholds(),
    )  # fmt: skip
    suite = gx.load_suite(
        path, thresholds=Thresholds(cardinality=0.95),
        metrics=G._suite_metrics("cardinality", ["parent_id"]),
    )  # fmt: skip
    (bound,) = bounds_from_suite(suite)
    assert bound.min_value == 0.95
    verdict = decide(gate="cardinality", metrics={"cardinality__parent_id": 0.9}, bounds=[bound])
    assert verdict.failures == ("cardinality__parent_id: 0.9 below the minimum 0.95",)
