import math
import warnings

import numpy as np
import pandas as pd
import pytest

from synth_platform.lib.evaluation import evaluate_privacy, find_pii_leaks
from synth_platform.lib.evaluation import privacy as privacy_module

from ._tables import CATEGORICAL, DATETIME, NUMERIC, mixed_table, sdmetrics_metadata

COLUMNS = {"numeric": NUMERIC, "datetime": DATETIME, "categorical": CATEGORICAL}


def _awkward_synthetic(n: int) -> pd.DataFrame:
    """Synthetic rows with out-of-range values, an unseen category and extra nulls."""
    synthetic = mixed_table(n, seed=3, income_shift=2000.0)
    synthetic.loc[:20, "income"] *= 3
    synthetic.loc[5:10, "region"] = "unseen"
    synthetic.loc[30:40, "score"] = np.nan
    return synthetic


@pytest.fixture(params=["tree", "brute"])
def search(request, monkeypatch):
    """Run a test through both neighbour-search paths."""
    if request.param == "tree":
        monkeypatch.setattr(privacy_module, "_TREE_MAX_DIMENSIONS", 1_000)
        monkeypatch.setattr(privacy_module, "_TREE_MIN_ROWS", 1)
    else:
        monkeypatch.setattr(privacy_module, "_TREE_MAX_DIMENSIONS", 0)
    return request.param


def test_distances_match_sdmetrics_calculate_dcr_row_by_row(search):
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    train, holdout = mixed_table(300, seed=1), mixed_table(300, seed=2)
    synthetic = _awkward_synthetic(250)
    metadata = sdmetrics_metadata(train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        to_train = calculate_dcr(dataset=synthetic, reference_dataset=train, metadata=metadata)
        to_holdout = calculate_dcr(dataset=synthetic, reference_dataset=holdout, metadata=metadata)

    ours = evaluate_privacy(
        ranges="reference", train=train, holdout=holdout, synthetic=synthetic, **COLUMNS
    )

    assert ours.n_synthetic_evaluated == 250 and ours.n_reference == 300
    np.testing.assert_allclose(ours.dcr_train, to_train.to_numpy(), atol=1e-9)
    np.testing.assert_allclose(ours.dcr_holdout, to_holdout.to_numpy(), atol=1e-9)


def test_edge_columns_match_sdmetrics_calculate_dcr(search):
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    def table(seed: int, synthetic: bool) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        n = 120
        return pd.DataFrame(
            {
                "constant": rng.choice([7.0, 8.0, np.nan], n) if synthetic else np.full(n, 7.0),
                "empty": rng.choice([1.0, np.nan], n) if synthetic else np.full(n, np.nan),
                "wide": rng.normal(size=n) * (4 if synthetic else 1),
                "flag": rng.choice([True, False], n),
            }
        )

    train, holdout, synthetic = table(1, False), table(2, False), table(3, True)
    metadata = {
        "columns": {
            "constant": {"sdtype": "numerical"},
            "empty": {"sdtype": "numerical"},
            "wide": {"sdtype": "numerical"},
            "flag": {"sdtype": "boolean"},
        }
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = calculate_dcr(dataset=synthetic, reference_dataset=train, metadata=metadata)
    ours = evaluate_privacy(
        ranges="reference",
        train=train,
        holdout=holdout,
        synthetic=synthetic,
        numeric=["constant", "empty", "wide"],
        datetime=[],
        categorical=["flag"],
    )
    np.testing.assert_allclose(ours.dcr_train, expected.to_numpy(), atol=1e-9)


def test_dcr_share_matches_sdmetrics_overfitting_protection_when_there_are_no_ties():
    from sdmetrics.single_table import DCROverfittingProtection

    train, holdout = mixed_table(300, seed=1), mixed_table(300, seed=2)
    synthetic = _awkward_synthetic(250)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = DCROverfittingProtection.compute_breakdown(
            train, synthetic, holdout, sdmetrics_metadata(train), None
        )
    ours = evaluate_privacy(
        ranges="reference", train=train, holdout=holdout, synthetic=synthetic, **COLUMNS
    )
    assert not np.any(ours.dcr_train == ours.dcr_holdout)
    closer = expected["synthetic_data_percentages"]["closer_to_training"]
    assert ours.dcr_share == pytest.approx(closer, abs=1e-12)


def test_baseline_protection_agrees_with_sdmetrics_dcr_baseline_protection(monkeypatch):
    from sdmetrics.single_table import DCRBaselineProtection

    train, holdout = mixed_table(300, seed=1), mixed_table(300, seed=2)
    synthetic = _awkward_synthetic(300)
    monkeypatch.setattr(DCRBaselineProtection, "_seed", 0)
    np.random.seed(0)  # SDMetrics draws the baseline's null mask from the global generator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = DCRBaselineProtection.compute_breakdown(
            train, synthetic, sdmetrics_metadata(train), None
        )
    ours = evaluate_privacy(
        ranges="reference", train=train, holdout=holdout, synthetic=synthetic, **COLUMNS
    )
    median = expected["median_DCR_to_real_data"]["synthetic_data"]
    assert np.median(ours.dcr_train) == pytest.approx(median, abs=1e-9)
    assert ours.baseline_protection == pytest.approx(expected["score"], abs=0.05)


def test_copying_the_train_rows_is_caught_by_every_measure():
    train, holdout = mixed_table(400, seed=1), mixed_table(400, seed=2)
    ours = evaluate_privacy(
        ranges="reference", train=train, holdout=holdout, synthetic=train.copy(), **COLUMNS
    )
    assert ours.exact_copies_train == len(train)
    assert ours.exact_copies_holdout == 0
    assert ours.dcr_share == pytest.approx(1.0)
    assert np.all(ours.dcr_train == 0)
    assert ours.nndr_median == 0.0
    assert ours.baseline_protection == 0.0


def test_fresh_rows_from_the_same_distribution_sit_halfway_between_train_and_holdout(search):
    train, holdout = mixed_table(600, seed=1), mixed_table(600, seed=2)
    synthetic = mixed_table(600, seed=3)
    ours = evaluate_privacy(
        ranges="reference", train=train, holdout=holdout, synthetic=synthetic, **COLUMNS
    )
    assert ours.exact_copies_train == 0
    assert 0.4 < ours.dcr_share < 0.6
    assert 0.5 < ours.nndr_median < 1.0
    assert ours.baseline_protection is not None and 0.0 < ours.baseline_protection <= 1.0


def test_ties_count_half():
    train = pd.DataFrame({"c": ["a", "b"] * 50})
    holdout = pd.DataFrame({"c": ["a", "b"] * 50})
    synthetic = pd.DataFrame({"c": ["a", "b", "z"] * 20})
    ours = evaluate_privacy(
        ranges="reference",
        train=train,
        holdout=holdout,
        synthetic=synthetic,
        numeric=[],
        datetime=[],
        categorical=["c"],
    )
    assert ours.dcr_share == 0.5
    # 'a' and 'b' are each held by 50 train rows: common, not copies of anyone's row
    assert ours.exact_copies_train == 0
    assert ours.common_copies_train == ours.exact_copies_holdout == 40
    assert ours.nndr_median == 1.0  # as close to one of those rows as to the next


def test_copies_of_rare_rows_count_and_copies_of_common_ones_are_reported():
    """A combination fewer than COMMON_ROWS train rows hold is someone's row: its copies
    count (synthpop's replicated uniques, k = 5); one held by 5+ rows is reported."""
    from synth_platform.lib.evaluation.privacy import COMMON_ROWS

    common = [("x", 0.0)] * COMMON_ROWS + [("y", 0.0)] * (COMMON_ROWS + 3)
    rare = [("r1", 1.5), ("r2", 2.5)] + [("r3", 3.5)] * (COMMON_ROWS - 1)
    train = pd.DataFrame(common + rare, columns=["c", "v"])
    holdout = pd.DataFrame([("x", 0.0), ("q", 9.0)] * 5, columns=["c", "v"])
    synthetic = pd.DataFrame(
        [("x", 0.0)] * 6 + [("y", 0.0)] * 4 + [("r1", 1.5), ("r3", 3.5), ("n", 7.0)],
        columns=["c", "v"],
    )
    ours = evaluate_privacy(
        train=train, holdout=holdout, synthetic=synthetic, numeric=["v"], datetime=[],
        categorical=["c"],
    )  # fmt: skip
    assert ours.exact_copies_train == 2  # r1 (unique) and r3 (held by 4 rows)
    assert ours.common_copies_train == 10
    # Copies of a rare combination that two train rows share (both distances 0): NNDR 0.
    twin = pd.DataFrame([("r3", 3.5)] * 30, columns=["c", "v"])
    copied = evaluate_privacy(
        train=train, holdout=holdout, synthetic=twin, numeric=["v"], datetime=[],
        categorical=["c"],
    )  # fmt: skip
    assert copied.nndr_median == 0.0 and copied.exact_copies_train == 30


def test_references_are_subsampled_to_the_same_seeded_size():
    train, holdout = mixed_table(900, seed=1), mixed_table(300, seed=2)
    synthetic = mixed_table(700, seed=3)
    first = evaluate_privacy(
        ranges="reference",
        train=train,
        holdout=holdout,
        synthetic=synthetic,
        max_rows=500,
        seed=4,
        **COLUMNS,
    )
    again = evaluate_privacy(
        ranges="reference",
        train=train,
        holdout=holdout,
        synthetic=synthetic,
        max_rows=500,
        seed=4,
        **COLUMNS,
    )
    assert first.n_reference == 300
    assert first.n_synthetic_evaluated == 500 == first.dcr_train.size
    np.testing.assert_array_equal(first.dcr_train, again.dcr_train)
    assert first.dcr_share == again.dcr_share
    # The cap shows on the report with its measured effect on the share.
    assert first.subsampled and first.n_synthetic == 700
    share = first.dcr_share
    assert 0 < first.dcr_share_sampling_error <= 1.01 * math.sqrt(share * (1 - share) / 500 * 2 / 7)


def test_every_synthetic_row_is_evaluated_by_default_with_progress_per_chunk(monkeypatch):
    monkeypatch.setattr(privacy_module, "_TREE_CHUNK", 100)
    train, holdout = mixed_table(900, seed=1), mixed_table(300, seed=2)
    synthetic = mixed_table(700, seed=3)
    calls = []
    report = evaluate_privacy(
        train=train,
        holdout=holdout,
        synthetic=synthetic,
        progress=lambda done, total: calls.append((done, total)),
        **COLUMNS,
    )
    assert report.n_synthetic_evaluated == 700 == report.n_synthetic
    assert report.n_reference == 300
    assert not report.subsampled and report.dcr_share_sampling_error == 0.0
    # synthetic rows against train, holdout, all train and random rows; holdout rows
    total = 4 * 700 + 300
    assert calls[-1] == (total, total) and len(calls) > 4
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_exact_copies_do_not_depend_on_dtypes():
    train = pd.DataFrame(
        {
            "n": [1, 2, 3],
            "d": pd.to_datetime(["2020-01-01", "2020-01-02", None]),
            "c": ["x", "y", None],
        }
    )
    synthetic = pd.DataFrame(
        {
            "n": [1.0, 2.0, 3.0],
            "d": ["2020-01-01", "2020-01-03", None],
            "c": pd.Series(["x", "y", None], dtype="category"),
        }
    )
    ours = evaluate_privacy(
        ranges="reference",
        train=train,
        holdout=train,
        synthetic=synthetic,
        numeric=["n"],
        datetime=["d"],
        categorical=["c"],
        baseline=False,
    )
    assert ours.exact_copies_train == 2  # the middle row's date differs
    assert ours.baseline_protection is None


def test_pii_leaks_are_counted_per_string_column():
    synthetic = pd.DataFrame(
        {
            "name": ["Ada Lovelace", "Grace Hopper", "Nobody", None],
            "email": pd.Series(
                ["ada@example.com", "x@y.z", "ada@example.com", "q"], dtype="string"
            ),
            "team": pd.Series(["Ada Lovelace", "b", "c", "d"], dtype="category"),
            "age": [1, 2, 3, 4],
        }
    )
    leaks = find_pii_leaks(
        real_values=["Ada Lovelace", "Grace Hopper", "ada@example.com"], synthetic=synthetic
    )
    assert leaks == {"name": 2, "email": 2, "team": 1}
    assert find_pii_leaks(real_values=[], synthetic=synthetic) == {"name": 0, "email": 0, "team": 0}


def test_empty_tables_and_empty_column_lists_are_rejected():
    train = mixed_table(20, seed=1)
    with pytest.raises(ValueError, match="no rows"):
        evaluate_privacy(
            ranges="reference", train=train, holdout=train.iloc[:0], synthetic=train, **COLUMNS
        )
    with pytest.raises(ValueError, match="no columns"):
        evaluate_privacy(
            ranges="reference",
            train=train,
            holdout=train,
            synthetic=train,
            numeric=[],
            datetime=[],
            categorical=[],
        )


def test_nndr_is_nan_with_a_single_reference_row():
    one = pd.DataFrame({"x": [1.0]})
    ours = evaluate_privacy(
        ranges="reference",
        train=one,
        holdout=one,
        synthetic=pd.DataFrame({"x": [1.0, 2.0]}),
        numeric=["x"],
        datetime=[],
        categorical=[],
    )
    assert math.isnan(ours.nndr_median)
    np.testing.assert_array_equal(ours.dcr_train, [0.0, 1.0])


def _direct_dcr(synthetic: pd.DataFrame, reference: pd.DataFrame, real: pd.DataFrame) -> np.ndarray:
    """The documented distance, pair by pair, with numeric ranges from ``real``."""
    total = np.zeros((len(synthetic), len(reference)))
    for name in ["x", "y"]:
        span = real[name].max() - real[name].min()
        a = synthetic[name].to_numpy()[:, None]
        b = reference[name].to_numpy()[None, :]
        close = np.minimum(np.abs(a - b) / span, 1.0)
        one_missing = np.isnan(a) ^ np.isnan(b)
        total += np.where(one_missing, 1.0, np.where(np.isnan(close), 0.0, close))
    a = synthetic["c"].to_numpy(dtype=object)[:, None]
    b = reference["c"].to_numpy(dtype=object)[None, :]
    total += ~((a == b) | (pd.isna(a) & pd.isna(b)))
    return total.min(axis=1) / 3


def test_shared_ranges_give_the_documented_distance_for_out_of_range_and_missing_values(search):
    rng = np.random.default_rng(11)

    def table(n: int, scale: float) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "x": rng.normal(size=n) * scale,
                "y": rng.exponential(size=n) * scale,
                "c": rng.choice(["a", "b", None], size=n),
            }
        )
        frame.loc[rng.random(n) < 0.15, "x"] = np.nan
        return frame

    train, holdout, synthetic = table(200, 1.0), table(200, 1.0), table(150, 3.0)
    ours = evaluate_privacy(
        train=train,
        holdout=holdout,
        synthetic=synthetic,
        numeric=["x", "y"],
        datetime=[],
        categorical=["c"],
    )
    real = pd.concat([train, holdout])
    np.testing.assert_allclose(ours.dcr_train, _direct_dcr(synthetic, train, real), atol=1e-9)
    np.testing.assert_allclose(ours.dcr_holdout, _direct_dcr(synthetic, holdout, real), atol=1e-9)


def test_baseline_handles_bigint_values_at_the_int64_maximum():
    """Bounds pass through float64, where 2**63 - 1 rounds up past int64: the random-row
    baseline must clip them instead of raising NumPy's "high is out of bounds"."""
    top = np.iinfo(np.int64).max
    frame = pd.DataFrame({"v": np.array([top - 3 * i for i in range(40)], dtype=np.int64),
                          "w": np.arange(40, dtype=np.int64)})  # fmt: skip
    rep = evaluate_privacy(
        train=frame.iloc[:20], holdout=frame.iloc[20:], synthetic=frame.iloc[5:25],
        numeric=["v", "w"], datetime=[], categorical=[], baseline=True,
    )  # fmt: skip
    # In float64 every `v` is the same number: the baseline may be undefined (None, which the
    # gate treats as not computed), but it never raises.
    assert rep.baseline_protection is None or 0.0 <= rep.baseline_protection <= 1.0
    assert rep.n_synthetic_evaluated == 20


def test_lightly_perturbed_copies_are_near_copies_but_fresh_rows_are_not():
    """dcr_share searches train subsampled to the holdout's size, so jittered copies of train
    rows scored ~0.55 there and passed; near copies are searched against every train row."""
    rng = np.random.default_rng(3)
    n = 2000
    real = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.lognormal(size=n), "c": rng.choice(list("xyz"), n)}
    )
    train, holdout = real.iloc[:1800], real.iloc[1800:]
    copies = train.sample(n=1000, replace=True, random_state=1).reset_index(drop=True)
    copies["a"] = copies["a"] + 1e-6
    fresh = pd.DataFrame(
        {"a": rng.normal(size=1000), "b": rng.lognormal(size=1000),
         "c": rng.choice(list("xyz"), 1000)}
    )  # fmt: skip
    kw = dict(train=train, holdout=holdout, numeric=["a", "b"], datetime=[], categorical=["c"])
    copied = evaluate_privacy(synthetic=copies, **kw)
    assert copied.exact_copies_train == 0  # the nudge hides them from exact matching
    assert copied.dcr_share < 0.6  # and the subsampled share does not see them
    assert copied.near_copies_synthetic == 1.0
    assert copied.near_copies_excess > 0.9
    honest = evaluate_privacy(synthetic=fresh, **kw)
    assert honest.near_copies_synthetic < 0.01
    assert abs(honest.near_copies_excess) < 0.02


def test_brute_force_work_is_bounded_and_the_sampling_is_reported(monkeypatch):
    # A wide table takes the brute force, whose work grows as rows squared: above the budget
    # both sides are sampled down by one factor and the report says so (never silently).
    rng = np.random.default_rng(4)

    def table(n, seed):
        r = np.random.default_rng(seed)
        return pd.DataFrame({f"x{i}": r.normal(size=n) for i in range(10)})

    numeric = [f"x{i}" for i in range(10)]
    train, holdout, synthetic = table(900, 1), table(300, 2), table(700, 3)
    monkeypatch.setattr(privacy_module, "BRUTE_FORCE_BUDGET", 700 * 900 * 10 // 16)
    monkeypatch.setattr(privacy_module, "_MIN_SAMPLED", 10)
    report = evaluate_privacy(
        train=train, holdout=holdout, synthetic=synthetic, numeric=numeric, datetime=[],
        categorical=[], seed=int(rng.integers(100)),
    )  # fmt: skip
    assert report.subsampled and report.n_synthetic == 700
    assert report.n_synthetic_evaluated < 700 and report.n_reference < 300
    assert report.dcr_share_sampling_error > 0
    # Few numeric columns: the exact k-d tree search serves it, every row stays in.
    few = evaluate_privacy(
        train=train, holdout=holdout, synthetic=synthetic, numeric=numeric[:2], datetime=[],
        categorical=[],
    )  # fmt: skip
    assert not few.subsampled and few.n_synthetic_evaluated == 700


def test_pii_leaks_count_text_and_typed_values_of_a_declared_column():
    real = pd.DataFrame(
        {"name": [f"n{i}" for i in range(500)], "born": pd.date_range("1970-01-01", periods=500)}
    )
    synthetic = pd.DataFrame(
        {
            "name": [f"n{i}" for i in range(450, 950)],  # 50 real names replayed
            "born": pd.date_range("1971-05-01", periods=500),  # 500 - 485 = 15 real dates
        }
    )
    leaks = find_pii_leaks(synthetic=synthetic, real=real, pii_columns=["name", "born"])
    assert leaks == {
        "name": 50,
        "born": 500 - (pd.Timestamp("1971-05-01") - pd.Timestamp("1970-01-01")).days,
    }
