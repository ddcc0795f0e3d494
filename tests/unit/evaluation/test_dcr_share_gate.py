import numpy as np
import pandas as pd

from synth_platform.lib.evaluation import evaluate_privacy


def _draw(n, rng):
    return pd.DataFrame({
        "amount": rng.lognormal(8, 2.5, n),  # heavy tail: sample ranges vary wildly
        "count": rng.poisson(3, n).astype(float),
        "kind": rng.choice(["a", "b", "c"], n, p=[0.7, 0.2, 0.1]),
    })  # fmt: skip


def test_dcr_share_of_an_independent_sample_is_near_one_half_with_heavy_tails():
    rng = np.random.default_rng(5)
    train, holdout, synthetic = _draw(1200, rng), _draw(300, rng), _draw(2000, rng)
    kinds = {"numeric": ["amount", "count"], "datetime": [], "categorical": ["kind"]}
    shares = [
        evaluate_privacy(
            train=train, holdout=holdout, synthetic=synthetic, seed=s, **kinds
        ).dcr_share
        for s in range(3)
    ]
    assert all(abs(s - 0.5) < 0.06 for s in shares), shares


def test_copies_of_training_rows_are_counted_and_pull_the_share_up():
    rng = np.random.default_rng(6)
    train, holdout = _draw(600, rng), _draw(600, rng)
    kinds = {"numeric": ["amount", "count"], "datetime": [], "categorical": ["kind"]}
    rep = evaluate_privacy(train=train, holdout=holdout, synthetic=train.copy(), **kinds)
    assert rep.exact_copies_train == len(train)
    assert rep.dcr_share > 0.95
