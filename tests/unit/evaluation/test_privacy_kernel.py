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


def _mixed_features(rng: np.random.Generator, rows: int, n_features: int) -> np.ndarray:
    """Scaled numerics in [-1, 2] with missing sentinels, and integer category codes."""
    out = np.where(
        rng.random((rows, n_features)) < 0.05, 8.0, rng.uniform(-1, 2, (rows, n_features))
    )
    codes = n_features // 3
    out[:, :codes] = rng.integers(0, 7, size=(rows, codes))
    return out


@pytest.mark.parametrize("n_features", [3, 9, 20, 40])
@pytest.mark.parametrize("k", [1, 2])
def test_float32_screen_is_bit_identical_to_the_float64_scan(n_features, k, monkeypatch):
    monkeypatch.setattr(privacy_module, "_SCREEN_MIN_WORK", 0)  # screen even small problems
    # 3 features: float64 only; 9: float32 screen; 20 and 40: screen with pruning.
    rng = np.random.default_rng(n_features)
    reference = _mixed_features(rng, 900, n_features)
    query = _mixed_features(rng, 257, n_features)
    query[:20] = reference[:20]  # exact matches
    query[20:40] = reference[40:60] + rng.normal(0, 1e-6, (20, n_features))  # near ties
    reference_t = np.ascontiguousarray(reference.T)
    expected = np.empty((query.shape[0], k))
    privacy_module._nearest_l1_clipped_kernel(query, reference_t, k, expected)
    got = privacy_module._nearest_l1_clipped(query, reference_t, k)
    assert np.array_equal(got, expected)


def test_float32_screen_falls_back_when_ties_overflow_its_buffer(monkeypatch):
    monkeypatch.setattr(privacy_module, "_SCREEN_MIN_WORK", 0)
    rescanned = []
    kernel = privacy_module._nearest_l1_clipped_kernel

    def recording(query, *args):
        rescanned.append(query.shape[0])
        return kernel(query, *args)

    rng = np.random.default_rng(1)
    row = _mixed_features(rng, 1, 24)
    reference = np.vstack([np.repeat(row, 200, axis=0), _mixed_features(rng, 300, 24)])
    reference[:200, -1] += rng.uniform(0, 1e-5, 200)  # 200 rows inside the rounding margin
    query = np.vstack([row, _mixed_features(rng, 10, 24)])
    reference_t = np.ascontiguousarray(reference.T)
    expected = np.empty((query.shape[0], 2))
    kernel(query, reference_t, 2, expected)
    monkeypatch.setattr(privacy_module, "_nearest_l1_clipped_kernel", recording)
    assert np.array_equal(privacy_module._nearest_l1_clipped(query, reference_t, 2), expected)
    assert rescanned == [1]  # only the tied query row went back to float64
