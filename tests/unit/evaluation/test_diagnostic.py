import math
import warnings

import numpy as np
import pandas as pd
import pytest

from synth_platform.lib.evaluation import evaluate_diagnostic

from ._tables import CATEGORICAL, DATETIME, NUMERIC, mixed_table, sdmetrics_metadata

COLUMNS = {"numeric": NUMERIC, "datetime": DATETIME, "categorical": CATEGORICAL}


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Real and synthetic tables with out-of-range values, unseen categories, duplicate keys."""
    real = mixed_table(500, seed=1)
    real.insert(0, "id", np.arange(500))
    synthetic = mixed_table(400, seed=3, income_shift=2000.0)
    synthetic.insert(0, "id", np.r_[np.arange(390), np.arange(5), [np.nan] * 5])
    synthetic.loc[:20, "income"] *= 3
    synthetic.loc[5:10, "region"] = "unseen"
    synthetic.loc[12:14, "region"] = None  # real region has no missing cells: invalid
    synthetic.loc[30:40, "age"] = np.nan  # real age has no missing cells: out of bounds
    synthetic.loc[50:60, "segment"] = None  # real segment has missing cells: valid
    synthetic.loc[70:75, "signup"] = pd.Timestamp("2040-01-01")
    synthetic.loc[80:85, "active"] = "maybe"
    return real, synthetic


def _sdmetrics_report(real: pd.DataFrame, synthetic: pd.DataFrame):
    from sdmetrics.reports.single_table import DiagnosticReport

    metadata = sdmetrics_metadata(real.drop(columns="id"))
    metadata["columns"]["id"] = {"sdtype": "id"}
    metadata["primary_key"] = "id"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = DiagnosticReport()
        report.generate(real, synthetic, metadata, verbose=False)
    return report


def test_matches_sdmetrics_diagnostic_report():
    real, synthetic = _tables()
    expected = _sdmetrics_report(real, synthetic)

    ours = evaluate_diagnostic(real=real, synthetic=synthetic, primary_key="id", **COLUMNS)

    validity = expected.get_details("Data Validity").set_index("Column")  # metadata order
    validity = validity.loc[ours.details["column"]]
    assert list(ours.details["metric"]) == list(validity["Metric"])
    np.testing.assert_allclose(ours.details["score"], validity["Score"], atol=1e-9)
    properties = expected.get_properties().set_index("Property")["Score"]
    assert ours.data_validity == pytest.approx(properties["Data Validity"], abs=1e-9)
    assert ours.data_structure == pytest.approx(properties["Data Structure"], abs=1e-9)
    assert ours.overall == pytest.approx(expected.get_score(), abs=1e-9)
    # Every kind of defect shows up in the minima.
    assert ours.boundary_adherence < 1 and ours.category_adherence < 1
    assert ours.key_uniqueness == pytest.approx(390 / 400)
    assert ours.table_structure == ours.data_structure < 1  # id and active changed dtype


def test_identical_tables_score_one():
    real, _ = _tables()

    ours = evaluate_diagnostic(real=real, synthetic=real.copy(), primary_key="id", **COLUMNS)

    assert ours.overall == ours.data_validity == ours.data_structure == 1.0
    assert (ours.details["score"] == 1.0).all()
    assert ours.boundary_adherence == ours.category_adherence == ours.key_uniqueness == 1.0


def test_table_structure_is_jaccard_of_named_dtypes():
    real = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 1.5]})
    synthetic = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "d": [1, 2]})

    ours = evaluate_diagnostic(
        real=real, synthetic=synthetic, numeric=["a"], datetime=[], categorical=["b"]
    )

    # Shared: (b, object). Union: (a, int64), (a, float64), (b, object), (c, ...), (d, ...).
    assert ours.table_structure == pytest.approx(1 / 5)
    assert ours.key_uniqueness is None


def test_all_missing_synthetic_column_is_skipped():
    real = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": ["x", "y", "x"]})
    synthetic = pd.DataFrame({"a": [np.nan, np.nan], "b": ["x", "z"]})

    ours = evaluate_diagnostic(
        real=real, synthetic=synthetic, numeric=["a"], datetime=[], categorical=["b"]
    )

    assert math.isnan(ours.details.loc[0, "score"])
    assert ours.data_validity == pytest.approx(0.5)
    assert ours.boundary_adherence is None


def test_rejects_key_listed_under_a_kind():
    real, synthetic = _tables()
    with pytest.raises(ValueError, match="primary key 'id'"):
        evaluate_diagnostic(
            real=real,
            synthetic=synthetic,
            numeric=[*NUMERIC, "id"],
            datetime=DATETIME,
            categorical=CATEGORICAL,
            primary_key="id",
        )
