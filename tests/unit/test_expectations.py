import json
from datetime import date

import pandas as pd
import pytest

from synth_platform.lib import expectations as gx
from synth_platform.lib import verdict
from synth_platform.lib.errors import ProjectError
from synth_platform.lib.metadata import TableMetadata
from synth_platform.lib.specs import Thresholds


def _suites(tmp_path, thresholds: Thresholds):
    real = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5], "c": ["a", "b", "a"]})
    meta = TableMetadata(
        table="t", primary_key="id", numeric=("x",), datetime=(), categorical=("c",),
        pii={}, columns=("id", "x", "c"),
    )  # fmt: skip
    return gx.ensure_suites(
        directory=None, generated=tmp_path, table="t", real=real, metadata=meta,
        thresholds=thresholds,
    )  # fmt: skip


def _types(path) -> dict[str, str]:
    suite = json.loads(path.read_text())
    return {e["kwargs"]["column"]: e["type"] for e in suite["expectations"]}


def test_every_metric_feeds_its_suite_gated_or_reported(tmp_path):
    paths = _suites(tmp_path, Thresholds())
    privacy = _types(paths["privacy"])
    assert set(privacy) == set(gx.PRIVACY_METRICS)
    assert privacy["dcr_share"] == gx.BETWEEN
    assert privacy["linkability_risk"] == gx.PRESENT  # reported until a bound is set
    assert set(_types(paths["fidelity"])) == set(gx.FIDELITY_METRICS)
    diagnostic = json.loads(paths["diagnostic"].read_text())["expectations"]
    assert {e["kwargs"]["min_value"] for e in diagnostic} == {1.0}


def test_a_threshold_in_the_meta_turns_a_reported_metric_into_a_gate(tmp_path):
    paths = _suites(tmp_path, Thresholds())
    suite = gx.load_suite(paths["privacy"], thresholds=Thresholds(linkability_risk=0.1))
    (exp,) = [e for e in suite["expectations"] if e["kwargs"]["column"] == "linkability_risk"]
    assert exp["type"] == gx.BETWEEN and exp["kwargs"]["max_value"] == 0.1
    passing = {m: 1.0 if bound == "min" else 0.0 for m, (_, bound) in gx.PRIVACY_METRICS.items()}
    row = pd.DataFrame([passing | {"linkability_risk": 0.3}])
    outcome = gx.validate(suite=suite, data=row)
    assert not outcome.success
    assert [o.column for o in outcome.failures] == ["linkability_risk"]


def test_a_metric_without_a_number_never_drops_its_bound(tmp_path):
    # Was: `applicable()` dropped every expectation on a metric that was None or not computed,
    # so a bound on it silently disappeared (fail open). The verdict keeps every bound.
    paths = _suites(tmp_path, Thresholds())
    gated = gx.load_suite(paths["fidelity"], thresholds=Thresholds(utility=0.5))
    bounds = verdict.bounds_from_suite(gated)
    assert {b.metric for b in bounds} == set(gx.FIDELITY_METRICS)
    result = verdict.decide(gate="fidelity", metrics={"overall": 0.9}, bounds=bounds)
    assert not result.passed
    failed = {c.metric for c in result.checks if not c.passed}
    assert {"utility", "worst_column_shape"} <= failed  # bounded, not computed: fail by name
    assert any(f.startswith("utility: not computed") for f in result.failures)


def test_a_threshold_in_the_meta_is_added_to_a_suite_written_without_that_metric(tmp_path):
    paths = _suites(tmp_path, Thresholds())
    suite = json.loads(paths["privacy"].read_text())
    suite["expectations"] = [
        e for e in suite["expectations"] if e["kwargs"]["column"] != "inference_risk"
    ]  # an older or hand-edited file that never listed the metric
    paths["privacy"].write_text(json.dumps(suite))
    loaded = gx.load_suite(paths["privacy"], thresholds=Thresholds(inference_risk=0.2))
    (exp,) = [e for e in loaded["expectations"] if e["kwargs"]["column"] == "inference_risk"]
    assert exp["type"] == gx.BETWEEN and exp["kwargs"]["max_value"] == 0.2
    # ... and it decides: a risk above the bound fails, and a missing risk fails too.
    bounds = verdict.bounds_from_suite(loaded)
    passing = {m: 1.0 if bound == "min" else 0.0 for m, (_, bound) in gx.PRIVACY_METRICS.items()}
    assert verdict.decide(gate="privacy", metrics=passing, bounds=bounds).passed
    over = verdict.decide(gate="privacy", metrics=passing | {"inference_risk": 0.3}, bounds=bounds)
    assert not over.passed and over.failures == ("inference_risk: 0.3 above the maximum 0.2",)
    gone = dict(passing)
    del gone["inference_risk"]
    assert not verdict.decide(gate="privacy", metrics=gone, bounds=bounds).passed


def test_a_threshold_in_the_meta_overrides_the_suite_file_bound(tmp_path):
    paths = _suites(tmp_path, Thresholds())
    loaded = gx.load_suite(paths["fidelity"], thresholds=Thresholds(fidelity=0.9, worst_column=0.7))
    kw = {e["kwargs"]["column"]: e["kwargs"] for e in loaded["expectations"]}
    assert kw["overall"]["min_value"] == 0.9 and kw["worst_column_shape"]["min_value"] == 0.7
    # Thresholds left at their defaults do not override the file (it is the source of truth).
    suite = json.loads(paths["fidelity"].read_text())
    for e in suite["expectations"]:
        if e["kwargs"]["column"] == "overall":
            e["kwargs"]["min_value"] = 0.6
    paths["fidelity"].write_text(json.dumps(suite))
    kw = {e["kwargs"]["column"]: e["kwargs"] for e in gx.load_suite(
        paths["fidelity"], thresholds=Thresholds())["expectations"]}  # fmt: skip
    assert kw["overall"]["min_value"] == 0.6


def test_a_meta_threshold_that_cannot_take_effect_fails_loading_naming_the_metric(tmp_path):
    paths = _suites(tmp_path, Thresholds())
    suite = json.loads(paths["privacy"].read_text())
    for e in suite["expectations"]:
        if e["kwargs"]["column"] == "linkability_risk":
            e["type"] = "expect_column_values_to_be_in_set"
            e["kwargs"] = {"column": "linkability_risk", "value_set": [0.0]}
    paths["privacy"].write_text(json.dumps(suite))
    with pytest.raises(ProjectError, match="linkability_risk"):
        gx.load_suite(paths["privacy"], thresholds=Thresholds(linkability_risk=0.1))


def test_validity_suites_accept_the_real_rows_of_enum_date_and_zoned_columns():
    real = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "tier": pd.Categorical(["gold", "silver", "gold"]),  # a DuckDB ENUM
            "born": [date(1980, 1, 2), date(1990, 3, 4), None],  # a DATE
            "seen": pd.to_datetime(["2024-01-01", "2024-02-01", None]).tz_localize("UTC"),
        }
    )
    meta = TableMetadata(
        table="t", primary_key="id", numeric=(), datetime=("born", "seen"),
        categorical=("tier",), pii={}, columns=tuple(real.columns),
    )  # fmt: skip
    suite = gx.validity_suite(table="t", real=real, metadata=meta, not_null=frozenset())
    outcome = gx.validate(suite=suite, data=real)
    assert outcome.success, [(o.column, o.observed) for o in outcome.failures]
    early = real.assign(born=[date(1970, 1, 1), date(1990, 3, 4), None])
    (failure,) = gx.validate(suite=suite, data=early).failures
    assert (failure.column, failure.unexpected_count) == ("born", 1)


def test_an_expectation_that_cannot_be_evaluated_fails_and_says_so():
    # Text against a numeric bound: GE raises inside the expectation.
    data = pd.DataFrame({"born": ["x", "y"]})
    suite = {"name": "t.validity", "expectations": [
        {"type": gx.BETWEEN, "kwargs": {"column": "born", "min_value": 1}}]}  # fmt: skip
    outcome = gx.validate(suite=suite, data=data)
    assert not outcome.success and str(outcome.outcomes[0].observed).startswith("error: ")
    public, _ = verdict.row_findings(outcome.outcomes, suite, data)
    assert public == [f"born: {gx.BETWEEN} could not be evaluated (details in the private report)"]


def _profile(rows: pd.DataFrame):
    meta = TableMetadata(
        table="t", primary_key="id", numeric=("x",), datetime=(), categorical=("c",),
        pii={}, columns=("id", "x", "c"),
    )  # fmt: skip
    return {"real": rows, "metadata": meta, "thresholds": Thresholds(), "table": "t"}


def _bounds(path) -> dict:
    suite = json.loads(path.read_text())
    return {
        e["kwargs"]["column"]: e["kwargs"]
        for e in suite["expectations"]
        if e["type"] in ("expect_column_values_to_be_between", "expect_column_values_to_be_in_set")
    }


def test_generated_suites_follow_a_growing_source_and_hand_written_ones_stay(tmp_path):
    # Was: the first run's profile was written into the repository's expectations/ folder and
    # kept, so a source that grew (a smaller amount, a new category) failed validity forever.
    small = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5], "c": ["a", "b", "a"]})
    grown = pd.DataFrame(
        {"id": [1, 2, 3, 4], "x": [-4.0, 1.5, 2.5, 9.0], "c": ["a", "b", "a", "z"]}
    )
    mine, generated = tmp_path / "mine", tmp_path / "home" / "suites"
    first = gx.ensure_suites(directory=mine, generated=generated, **_profile(small))
    assert first["validity"].parent == generated and not mine.exists()
    assert _bounds(first["validity"])["x"]["min_value"] == 0.5
    second = gx.ensure_suites(directory=mine, generated=generated, **_profile(grown))
    bounds = _bounds(second["validity"])
    assert (bounds["x"]["min_value"], bounds["x"]["max_value"]) == (-4.0, 9.0)
    assert bounds["c"]["value_set"] == ["a", "b", "z"]
    outcome = gx.validate(suite=json.loads(second["validity"].read_text()), data=grown)
    assert outcome.success
    # A profile an older version left in the user's folder (still marked as generated) does
    # not freeze the bounds: it is re-derived.
    mine.mkdir()
    (mine / "t.validity.json").write_text(first["validity"].read_text())
    assert "x" in _bounds(first["validity"])
    left_over = gx.ensure_suites(directory=mine, generated=generated, **_profile(grown))
    assert left_over["validity"].parent == generated
    # A suite the user wrote is used exactly as written, whatever the profile says.
    own = json.loads(second["validity"].read_text())
    del own["meta"]["generated_by"]
    for e in own["expectations"]:
        if e["kwargs"].get("column") == "x" and "min_value" in e["kwargs"]:
            e["kwargs"]["min_value"] = 0.0
    (mine / "t.validity.json").write_text(json.dumps(own))
    third = gx.ensure_suites(directory=mine, generated=generated, **_profile(grown))
    assert third["validity"] == mine / "t.validity.json"
    assert _bounds(third["validity"])["x"]["min_value"] == 0.0
    assert third["fidelity"].parent == generated  # the other kinds stay generated


def _between_and_type(column: str, low, high, type_: str) -> dict:
    return {
        "name": "t.validity",
        "expectations": [
            {"type": "expect_column_values_to_be_between",
             "kwargs": {"column": column, "min_value": low, "max_value": high}},
            {"type": "expect_column_values_to_be_of_type",
             "kwargs": {"column": column, "type_": type_}},
        ],
    }  # fmt: skip


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_timestamps_of_any_unit_are_checked_against_their_bounds_alike(unit):
    # DuckDB's TIMESTAMP arrives as datetime64[us], which GE compared value by value (3.4 s per
    # million rows); it now gets nanoseconds, with the same outcomes as before.
    stamps = pd.Series(pd.to_datetime(["2024-01-01 00:00:01", None, "2024-06-30 12:00:00"]))
    column = stamps.astype(f"datetime64[{unit}]")
    frame = pd.DataFrame({"at": column})
    own = str(column.dtype)
    passed = gx.validate(
        suite=_between_and_type("at", "2024-01-01T00:00:01", "2024-06-30T12:00:00", own),
        data=frame,
    )
    assert passed.success and [o.success for o in passed.outcomes] == [True, True]
    failed = gx.validate(
        suite=_between_and_type("at", "2024-01-01T00:00:02", "2024-06-30T12:00:00", own),
        data=frame,
    )
    assert not failed.success and failed.outcomes[0].unexpected_count == 1
    assert frame["at"].dtype == column.dtype  # the caller's frame is left as it was


def test_only_in_range_naive_timestamps_go_to_ge_in_nanoseconds():
    us = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01"])).astype("datetime64[us]")
    frame = pd.DataFrame({
        "us": us,
        "zoned": us.dt.tz_localize("UTC"),  # GE compares zone-aware columns at once already
        "far": pd.Series(pd.array(["2020-01-01", "9999-12-31"], dtype="datetime64[us]")),
        "typed_else": us,  # its type expectation names another type: left as it is
    })  # fmt: skip
    suite = {
        "name": "s",
        "expectations": [
            {"type": "expect_column_values_to_be_of_type",
             "kwargs": {"column": "us", "type_": "datetime64[us]"}},
            {"type": "expect_column_values_to_be_in_type_list",
             "kwargs": {"column": "us", "type_list": ["datetime64[us]", "int64"]}},
            {"type": "expect_column_values_to_be_of_type",
             "kwargs": {"column": "typed_else", "type_": "int64"}},
        ],
    }  # fmt: skip
    out, retyped, renamed = gx._nanosecond_timestamps(frame, suite)
    assert {c: str(out[c].dtype) for c in out} == {
        "us": "datetime64[ns]", "zoned": "datetime64[us, UTC]", "far": "datetime64[us]",
        "typed_else": "datetime64[us]",
    }  # fmt: skip
    assert renamed == {"us": {"datetime64[ns]": "datetime64[us]"}}
    kwargs = [e["kwargs"] for e in retyped["expectations"]]
    assert kwargs[0]["type_"] == "datetime64[ns]"
    assert kwargs[1]["type_list"] == ["datetime64[ns]", "int64"]
    assert kwargs[2]["type_"] == "int64"
    assert suite["expectations"][0]["kwargs"]["type_"] == "datetime64[us]"  # not mutated
