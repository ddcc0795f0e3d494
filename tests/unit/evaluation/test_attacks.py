import math
import time

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from synth_platform.lib.evaluation import attacks as attacks_module
from synth_platform.lib.evaluation import evaluate_attacks

from ._tables import CATEGORICAL, DATETIME, NUMERIC, mixed_table

COLUMNS = {"numeric": NUMERIC, "datetime": DATETIME, "categorical": CATEGORICAL}


@pytest.fixture(scope="module")
def real() -> tuple[pd.DataFrame, pd.DataFrame]:
    return mixed_table(2000, seed=1), mixed_table(2000, seed=2)


def _all(report):
    return [report.singling_out, report.linkability, *report.inference.values()]


def test_copy_of_train_is_at_high_risk(real):
    train, holdout = real

    started = time.perf_counter()
    report = evaluate_attacks(train=train, holdout=holdout, synthetic=train.copy(), **COLUMNS)
    elapsed = time.perf_counter() - started

    assert elapsed < 3.0
    assert report.singling_out.risk > 0.5 and report.singling_out.attack_rate > 0.9
    assert report.linkability.risk > 0.5
    assert list(report.inference) == [*NUMERIC[:2], *DATETIME, *CATEGORICAL, NUMERIC[2]]
    assert all(result.risk > 0.5 for result in report.inference.values())
    assert all(result.beats_baseline for result in _all(report))
    assert report.max_risk > 0.9
    assert report.n_synthetic == 2000 and report.n_reference == 2000
    for result in _all(report):
        assert result.n_attacks == 500
        assert result.risk_ci[0] <= result.risk <= result.risk_ci[1]
        assert result.attack_ci[0] <= result.attack_rate <= result.attack_ci[1]


def test_fresh_sample_from_the_generator_is_at_no_risk(real):
    train, holdout = real
    fresh = mixed_table(2000, seed=3)

    report = evaluate_attacks(
        train=train, holdout=holdout, synthetic=fresh, n_attacks=2000, **COLUMNS
    )

    for result in _all(report):
        assert result.risk < 0.1, result
        assert result.risk_ci[0] < 0.05, result  # the interval reaches (about) zero
    assert report.linkability.attack_rate < 0.02


def test_deterministic_with_seed(real):
    train, holdout = real
    fresh = mixed_table(1000, seed=3)
    kwargs = {"train": train, "holdout": holdout, "synthetic": fresh, "n_attacks": 200}

    first = evaluate_attacks(**kwargs, **COLUMNS, seed=7, secrets=["age", "region"])
    second = evaluate_attacks(**kwargs, **COLUMNS, seed=7, secrets=["age", "region"])
    other = evaluate_attacks(**kwargs, **COLUMNS, seed=8, secrets=["age", "region"])

    assert first == second
    assert first != other
    assert list(first.inference) == ["age", "region"]


def test_ties_do_not_fake_links():
    """With two binary columns every synthetic row ties with many: links must stay rare."""
    rng = np.random.default_rng(0)

    def table(n: int) -> pd.DataFrame:
        return pd.DataFrame({"a": rng.integers(0, 2, n), "b": rng.integers(0, 2, n)})

    train, holdout, synthetic = table(500), table(500), table(500)
    report = evaluate_attacks(
        train=train,
        holdout=holdout,
        synthetic=synthetic,
        numeric=[],
        datetime=[],
        categorical=["a", "b"],
    )

    assert report.link_columns == (("a",), ("b",))
    assert report.linkability.attack_rate < 0.02
    assert report.linkability.control_rate < 0.02


def test_rates_and_risk_follow_anonymeter_formulas():
    result = attacks_module._result("linkability", None, n=400, attack=120, control=40, baseline=8)

    z = norm.ppf(0.975)

    def wilson(successes: int, n: int) -> tuple[float, float]:
        centre = (successes + z * z / 2) / (n + z * z)
        error = z / (n + z * z) * math.sqrt(successes * (n - successes) / n + z * z / 4)
        return centre, error

    (a, da), (c, dc) = wilson(120, 400), wilson(40, 400)
    residual = (a - c) / (1 - c)
    error = math.sqrt((da / (1 - c)) ** 2 + (dc * (a - 1) / (1 - c) ** 2) ** 2)
    assert result.attack_rate == 0.3 and result.control_rate == 0.1
    assert result.attack_ci == pytest.approx((a - da, a + da))
    assert result.risk == pytest.approx(residual)
    assert result.risk_ci == pytest.approx((residual - error, residual + error))


def test_numeric_inference_tolerance_and_missing_secrets():
    train = pd.DataFrame({"key": ["a", "b", "c", "d"], "x": [100.0, 200.0, np.nan, 400.0]})
    synthetic = pd.DataFrame({"key": ["a", "b", "c", "d"], "x": [104.0, 230.0, np.nan, 0.0]})
    holdout = train.assign(key=["e", "f", "g", "h"])

    report = evaluate_attacks(
        train=train,
        holdout=holdout,
        synthetic=synthetic,
        numeric=["x"],
        datetime=[],
        categorical=["key"],
        secrets=["x"],
    )

    # Guesses from the matching key: 104 (within 5%), 230 (not), missing (= missing), 0 (not).
    assert report.inference["x"].attack_rate == 0.5


def test_rejects_bad_link_columns(real):
    train, holdout = real
    with pytest.raises(ValueError, match="overlap"):
        evaluate_attacks(
            train=train,
            holdout=holdout,
            synthetic=train,
            link_columns=(["age", "income"], ["income"]),
            **COLUMNS,
        )
    with pytest.raises(ValueError, match="secret 'nope'"):
        evaluate_attacks(train=train, holdout=holdout, synthetic=train, secrets=["nope"], **COLUMNS)
