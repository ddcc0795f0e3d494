import numpy as np
import pandas as pd

from synth_platform.lib.split import fingerprint, split_frame


def _frame(n=2000):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"id": np.arange(n), "x": rng.normal(size=n)})


def test_split_is_seeded_and_has_the_requested_share():
    df = _frame()
    train, holdout = split_frame(df, key="id", holdout=0.2, seed=1)
    assert len(train) + len(holdout) == len(df)
    assert 0.17 < len(holdout) / len(df) < 0.23
    assert set(train.id).isdisjoint(holdout.id)
    again, _ = split_frame(df, key="id", holdout=0.2, seed=1)
    assert train.equals(again)
    other, _ = split_frame(df, key="id", holdout=0.2, seed=2)
    assert set(other.id) != set(train.id)


def test_a_rows_side_is_stable_when_rows_are_added_or_shuffled():
    df = _frame()
    _, holdout = split_frame(df, key="id", holdout=0.2, seed=1)
    bigger = pd.concat([df, _frame(3000).iloc[2000:]]).sample(frac=1, random_state=3)
    _, holdout2 = split_frame(bigger, key="id", holdout=0.2, seed=1)
    assert set(holdout.id) <= set(holdout2.id)


def test_fingerprint_ignores_row_order_but_not_content():
    df = _frame()
    assert fingerprint(df) == fingerprint(df.sample(frac=1, random_state=1))
    changed = df.copy()
    changed.loc[0, "x"] += 1
    assert fingerprint(df) != fingerprint(changed)
