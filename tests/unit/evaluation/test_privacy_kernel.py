"""The compiled brute-force search and the exact-copy hashes (performance rewrite)."""

import numpy as np
import pandas as pd
import pytest

from synth_platform.lib.evaluation import evaluate_privacy
from synth_platform.lib.evaluation import privacy as privacy_module


@pytest.mark.parametrize("k", [1, 2])
def test_kernel_matches_a_naive_search(k):
    rng = np.random.default_rng(0)
    reference = np.where(rng.random((700, 9)) < 0.1, 8.0, rng.random((700, 9)))
    reference[:, 6:] = rng.integers(0, 4, size=(700, 3))  # categorical codes
    query = np.where(rng.random((301, 9)) < 0.1, 8.0, rng.uniform(-1, 2, (301, 9)))
    query[:, 6:] = rng.integers(0, 6, size=(301, 3))
    query[:5] = reference[:5]  # exact matches and ties
    full = np.minimum(np.abs(query[:, None, :] - reference[None, :, :]), 1.0).sum(axis=2)
    expected = np.sort(full, axis=1)[:, :k]
    got = privacy_module._nearest_l1_clipped(query, np.ascontiguousarray(reference.T), k)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_exact_copies_compare_categories_by_text():
    train = pd.DataFrame(
        {
            "x": [0.0, 1.5, 2.0, 3.0],
            "mixed": pd.Series([1, "a", True, 2.5], dtype=object),
            "flag": [True, False, True, False],
        }
    )
    synthetic = pd.DataFrame(
        {
            "x": [-0.0, 1.5, 2.0, 3.0],
            # "1" equals 1 as text; 1.0 does not ("1.0"); "True" equals True.
            "mixed": pd.Series(["1", "a", "True", 2.5], dtype=object),
            "flag": pd.Series(["True", "False", None, "False"], dtype=object),
        }
    )
    report = evaluate_privacy(
        train=train,
        holdout=train,
        synthetic=synthetic,
        numeric=["x"],
        datetime=[],
        categorical=["mixed", "flag"],
        baseline=False,
    )
    assert report.exact_copies_train == 3  # rows 0, 1 and 3; row 2 has a missing flag
    synthetic.loc[0, "mixed"] = 1.0
    report = evaluate_privacy(
        train=train,
        holdout=train,
        synthetic=synthetic,
        numeric=["x"],
        datetime=[],
        categorical=["mixed", "flag"],
        baseline=False,
    )
    assert report.exact_copies_train == 2
