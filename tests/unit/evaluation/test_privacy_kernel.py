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


# ------------------------------------------------------------- blocked search vs brute force


def _random_rows(
    rng: np.random.Generator,
    n_rows: int,
    *,
    n_numeric: int,
    levels: list[int],
    grid: bool,
    query: bool,
) -> privacy_module._Rows:
    """Rows with missing cells; a query also gets out-of-range values and unseen categories."""
    if grid:  # few distinct values: many exact ties
        numeric = rng.integers(0, 5, size=(n_rows, n_numeric)).astype(float)
    else:
        numeric = rng.normal(size=(n_rows, n_numeric))
    if query:
        outside = rng.random((n_rows, n_numeric)) < 0.03
        numeric[outside] = rng.choice([-40.0, -6.0, 7.5, 60.0], size=outside.sum())
    numeric[rng.random((n_rows, n_numeric)) < 0.08] = np.nan
    categorical = []
    for n_levels in levels:
        codes = rng.integers(0, n_levels + (1 if query else 0), size=n_rows)  # + unseen code
        codes[rng.random(n_rows) < 0.05] = -1
        categorical.append(codes.astype(np.int64))
    return privacy_module._Rows(n_rows, numeric, categorical)


def _naive_nearest(
    index: privacy_module._ReferenceIndex,
    query: privacy_module._Rows,
    reference: privacy_module._Rows,
    k: int,
) -> np.ndarray:
    """The documented distance for every pair (numeric columns first, then categorical ones,
    summed in column order as the compiled kernel does), then the k smallest per row."""
    lo, span = index._lo, index._span
    total = np.zeros((query.n_rows, reference.n_rows))
    for j in range(query.numeric.shape[1]):
        a, b = query.numeric[:, j][:, None], reference.numeric[:, j][None, :]
        if np.isnan(span[j]):  # no real value at all: every present value is 0
            scaled_a, scaled_b = np.zeros_like(a), np.zeros_like(b)
        elif span[j] == 0:
            scaled_a, scaled_b = (a != lo[j]).astype(float), (b != lo[j]).astype(float)
        else:
            scaled_a, scaled_b = (a - lo[j]) / span[j], (b - lo[j]) / span[j]
        term = np.minimum(np.abs(scaled_a - scaled_b), 1.0)
        term = np.where(
            np.isnan(a) & np.isnan(b), 0.0, np.where(np.isnan(a) ^ np.isnan(b), 1, term)
        )
        total += term
    for a, b in zip(query.categorical, reference.categorical, strict=True):
        total += (a[:, None] != b[None, :]).astype(float)
    nearest = np.sort(total, axis=1)[:, :k]
    if nearest.shape[1] < k:
        nearest = np.hstack([nearest, np.full((query.n_rows, k - nearest.shape[1]), np.inf)])
    return np.round(nearest / (query.numeric.shape[1] + len(query.categorical)), 12)


@pytest.fixture(params=["blocked", "brute"])
def strategy(request, monkeypatch):
    """Run a test through both exact searches, with chunks small enough to take several."""
    monkeypatch.setattr(privacy_module, "_TREE_CHUNK", 37)
    monkeypatch.setattr(privacy_module, "_CHUNK_WORK", 5_000)
    if request.param == "blocked":
        monkeypatch.setattr(privacy_module, "_TREE_MIN_ROWS", 8)  # trees even in small blocks
    else:
        monkeypatch.setattr(privacy_module, "_TREE_MAX_DIMENSIONS", 0)
    return request.param


@pytest.mark.parametrize(
    ("n_numeric", "levels", "grid"),
    [
        (3, [4, 3, 2], False),  # mixed
        (3, [4, 3, 2], True),  # mixed, many exact ties
        (2, [1, 6], False),  # a single-level categorical
        (4, [], False),  # all numeric
        (4, [], True),
        (0, [3, 4, 2], False),  # all categorical
        (1, [2], True),
    ],
)
@pytest.mark.parametrize("k", [1, 2])
def test_search_returns_exactly_the_naive_nearest_distances(n_numeric, levels, grid, k, strategy):
    rng = np.random.default_rng([n_numeric, len(levels), int(grid), k])
    reference = _random_rows(rng, 400, n_numeric=n_numeric, levels=levels, grid=grid, query=False)
    query = _random_rows(rng, 300, n_numeric=n_numeric, levels=levels, grid=grid, query=True)
    query = privacy_module._Rows(  # exact copies of reference rows: distance 0 ties
        300,
        np.vstack([reference.numeric[:20], query.numeric[20:]]),
        [
            np.concatenate([r[:20], q[20:]])
            for r, q in zip(reference.categorical, query.categorical, strict=True)
        ],
    )
    # Ranges from a wider "real" table, as the gate's shared ranges: references inside [0, 1].
    index = privacy_module._ReferenceIndex(
        reference, scale_from=[reference.numeric, reference.numeric * 1.5]
    )
    ticks = []
    got = index.nearest(query, k=k, progress=ticks.append)
    assert np.array_equal(got, _naive_nearest(index, query, reference, k))
    assert sum(ticks) == query.n_rows and len(ticks) > 1  # in chunks


def test_search_finds_the_nearest_in_another_categorical_combination(strategy):
    # Query combination absent from the reference, and rows far from their own combination.
    rng = np.random.default_rng(5)
    reference = privacy_module._Rows(
        200,
        np.concatenate([rng.uniform(0, 0.1, 100), rng.uniform(0.9, 1, 100)])[:, None],
        [np.repeat([0, 1], 100), np.zeros(200, dtype=np.int64)],
    )
    query = privacy_module._Rows(
        4, np.array([[0.95], [0.05], [0.5], [np.nan]]), [np.array([0, 0, 2, 1]), np.zeros(4, int)]
    )
    index = privacy_module._ReferenceIndex(reference)
    for k in (1, 2):
        assert np.array_equal(index.nearest(query, k=k), _naive_nearest(index, query, reference, k))


def test_a_single_reference_row_leaves_the_second_neighbour_infinite(strategy):
    reference = privacy_module._Rows(1, np.array([[0.5]]), [np.array([0])])
    query = privacy_module._Rows(2, np.array([[0.5], [0.25]]), [np.array([0, 1])])
    got = privacy_module._ReferenceIndex(reference).nearest(query, k=2)
    assert np.array_equal(got, [[0.0, np.inf], [1.0, np.inf]])  # a zero range: 0.25 differs
