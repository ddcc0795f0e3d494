import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from synth_platform.lib.evaluation import evaluate_utility

from ._tables import CATEGORICAL, DATETIME, NUMERIC, mixed_table

COLUMNS = {"numeric": NUMERIC, "datetime": DATETIME, "categorical": CATEGORICAL}


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return mixed_table(1000, seed=1), mixed_table(600, seed=2), mixed_table(1000, seed=3)


def _shuffled(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    out = frame.copy()
    out[column] = np.random.default_rng(0).permutation(out[column].to_numpy())
    return out


@pytest.mark.parametrize(
    ("target", "task", "metric"),
    [
        ("segment", "classification", "macro_f1"),
        ("age", "regression", "r2"),
    ],
)
def test_fresh_sample_keeps_utility_and_shuffled_target_loses_it(tables, target, task, metric):
    train, holdout, fresh = tables

    good = evaluate_utility(train=train, holdout=holdout, synthetic=fresh, target=target, **COLUMNS)
    bad = evaluate_utility(
        train=train, holdout=holdout, synthetic=_shuffled(fresh, target), target=target, **COLUMNS
    )

    assert good.task == bad.task == task and good.metric == metric
    assert good.real_score == bad.real_score > 0.4  # the same real model
    assert good.ratio > 0.85
    assert bad.ratio < 0.6
    assert good.n_train_real == train[target].notna().sum()  # rows without a target dropped
    assert good.n_holdout == holdout[target].notna().sum()
    if task == "classification":
        assert good.real_accuracy is not None and good.real_roc_auc is None  # four classes
    else:
        assert good.real_accuracy is None and bad.synthetic_score < 0 and bad.ratio == 0.0


def test_binary_target_reports_roc_auc(tables):
    train, holdout, fresh = tables

    report = evaluate_utility(
        train=train, holdout=holdout, synthetic=fresh, target="active", **COLUMNS
    )

    assert report.real_roc_auc > 0.8 and report.synthetic_roc_auc > 0.8
    assert report.ratio > 0.85


def test_progress_counts_fitting_and_scored_rows(tables):
    train, holdout, fresh = tables
    calls: list[tuple[int, int]] = []
    report = evaluate_utility(
        train=train, holdout=holdout, synthetic=fresh, target="age", progress=lambda *a:
        calls.append(a), **COLUMNS,
    )  # fmt: skip
    total = report.n_train_real + report.n_train_synthetic + 2 * report.n_holdout
    done = [report.n_train_real, report.n_holdout, report.n_train_synthetic, report.n_holdout]
    assert calls == [(int(x), total) for x in np.cumsum(done)]


def test_deterministic_with_seed_and_subsamples(tables):
    train, holdout, fresh = tables
    kwargs = {"train": train, "holdout": holdout, "synthetic": fresh, "target": "age"}

    first = evaluate_utility(**kwargs, **COLUMNS, max_rows=500, seed=5)
    second = evaluate_utility(**kwargs, **COLUMNS, max_rows=500, seed=5)

    timing = {"fit_seconds_real", "fit_seconds_synthetic"}
    as_dict = [
        {k: v for k, v in dataclasses.asdict(r).items() if k not in timing} for r in (first, second)
    ]
    assert as_dict[0] == as_dict[1]
    assert first.n_train_real == first.n_train_synthetic == 500


def test_class_missing_from_synthetic_costs_its_f1(tables):
    train, holdout, fresh = tables
    without_gold = fresh[fresh["segment"] != "gold"]

    partial = evaluate_utility(
        train=train, holdout=holdout, synthetic=without_gold, target="segment", **COLUMNS
    )

    # The fresh sample with every class scores about the real model (ratio ~ 1, see above).
    assert partial.synthetic_score < partial.real_score - 0.1
    assert partial.n_train_synthetic == without_gold["segment"].notna().sum()


def test_unseen_holdout_category_and_constant_synthetic_target(tables):
    train, holdout, fresh = tables
    holdout = holdout.copy()
    holdout.loc[:50, "region"] = "never-seen"
    constant = fresh.assign(active=True)

    report = evaluate_utility(
        train=train, holdout=holdout, synthetic=constant, target="active", **COLUMNS
    )

    assert report.real_score > 0.7
    assert report.synthetic_roc_auc == 0.5  # a constant prediction ranks nothing
    assert report.ratio < 0.8


def test_constant_real_target_is_a_clear_error(tables):
    train, holdout, fresh = tables
    with pytest.raises(ValueError, match="target 'region' is constant in the train data"):
        evaluate_utility(
            train=train.assign(region="n"),
            holdout=holdout,
            synthetic=fresh,
            target="region",
            **COLUMNS,
        )
    with pytest.raises(ValueError, match="not listed"):
        evaluate_utility(train=train, holdout=holdout, synthetic=fresh, target="nope", **COLUMNS)


def test_non_positive_real_score_gives_nan_ratio():
    rng = np.random.default_rng(0)

    def table(n: int) -> pd.DataFrame:
        return pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)})

    report = evaluate_utility(
        train=table(300),
        holdout=table(300),
        synthetic=table(300),
        target="y",
        numeric=["x", "y"],
        datetime=[],
        categorical=[],
    )

    assert report.real_score <= 0 and math.isnan(report.ratio)


@pytest.mark.parametrize("classes", [2, 3])
def test_one_pass_classes_and_probabilities_are_the_models_own(classes):
    # The scores read classes and probabilities from one sum over the trees: they must be what
    # the model's own predict and predict_proba return, to the bit.
    from sklearn.ensemble import HistGradientBoostingClassifier

    from synth_platform.lib.evaluation.utility import _classify

    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 3))
    y = np.array(list("abc"))[(np.abs(x[:, 0] + rng.normal(size=3000)) * classes / 2.5)
                              .astype(int).clip(0, classes - 1)]  # fmt: skip
    model = HistGradientBoostingClassifier(random_state=0, max_iter=30).fit(x, y)
    test = rng.normal(size=(2000, 3))
    predicted, probabilities = _classify(model, test)
    np.testing.assert_array_equal(predicted, model.predict(test))
    np.testing.assert_array_equal(probabilities(), model.predict_proba(test))
