import json

import pandas as pd

from synth_platform.lib import expectations as gx
from synth_platform.lib.metadata import TableMetadata
from synth_platform.lib.specs import Thresholds


def _suites(tmp_path, thresholds: Thresholds):
    real = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5], "c": ["a", "b", "a"]})
    meta = TableMetadata(
        table="t", primary_key="id", numeric=("x",), datetime=(), categorical=("c",),
        pii={}, columns=("id", "x", "c"),
    )  # fmt: skip
    return gx.ensure_suites(
        directory=tmp_path, table="t", real=real, metadata=meta, thresholds=thresholds
    )


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


def test_reported_metrics_not_computed_and_undefined_metrics_are_skipped(tmp_path):
    paths = _suites(tmp_path, Thresholds())
    suite = gx.load_suite(paths["fidelity"])
    kept = gx.applicable(suite, available={"overall", "column_shapes", "worst_column_shape"},
                         not_applicable={"column_pair_trends"})  # fmt: skip
    assert {e["kwargs"]["column"] for e in kept["expectations"]} == {
        "overall", "column_shapes", "worst_column_shape"
    }  # fmt: skip
    # A bound on a metric the run should have computed stays, and fails by name.
    gated = gx.load_suite(paths["fidelity"], thresholds=Thresholds(utility=0.5))
    kept = gx.applicable(gated, available={"overall"})
    outcome = gx.validate(suite=kept, data=pd.DataFrame([{"overall": 0.9}]))
    assert not outcome.success
    assert "utility" in {o.column for o in outcome.failures}
