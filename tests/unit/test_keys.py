"""Synthetic keys keep the real keys' format and never reuse a real key."""

from __future__ import annotations

import re
import uuid

import numpy as np
import pandas as pd
import pytest

from synth_platform.lib.keys import KeyFormat
from tests.star import generate_star


@pytest.fixture(scope="module")
def star():
    return generate_star(flights=500, airports=120, planes=300, seed=4)


def _shape(code: str) -> str:
    return re.sub("[A-Z]", "A", re.sub("[0-9]", "9", code))


@pytest.mark.parametrize(
    ("table", "column", "pattern"),
    [
        ("planes", "tailnum", r"^N[1-9][0-9]{0,3}[A-Z]{0,2}$"),
        ("airports", "faa", r"^[A-Z]{3}$"),
        ("carriers", "carrier", r"^[A-Z0-9]{2}$"),
    ],
)
def test_codes_keep_length_alphabet_and_fixed_prefix(star, table, column, pattern):
    real = star[table][column]
    keys = KeyFormat.learn(real).generate(200, seed=1, forbidden=real)
    drawn = pd.Series(keys.values)
    assert drawn.is_unique and len(drawn) == 200
    assert not drawn.isin(real).any()  # never a real key
    assert drawn.str.fullmatch(pattern).all(), drawn[~drawn.str.fullmatch(pattern)].tolist()[:5]
    # The shapes the real keys use (e.g. N9999AA / N999A / N99), in similar proportions.
    real_shapes = real.map(_shape).value_counts(normalize=True)
    drawn_shapes = drawn.map(_shape).value_counts(normalize=True)
    assert set(drawn_shapes.index) <= set(real_shapes.index) or keys.widened
    assert (drawn_shapes.reindex(real_shapes.index, fill_value=0) - real_shapes).abs().max() < 0.15


def test_integer_keys_stay_in_a_comparable_range_and_are_new():
    real = pd.Series(np.arange(1, 1001))
    keys = KeyFormat.learn(real).generate(1000, seed=0, forbidden=real).values
    assert keys.dtype.kind == "i" and len(set(keys)) == 1000
    assert not np.isin(keys, real).any()
    assert keys.min() >= 1 and keys.max() <= 3000
    assert (np.diff(keys) > 0).all()  # ascending, like an id column


def test_uuids_stay_uuids_and_draws_are_seeded():
    real = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(50)]
    f = KeyFormat.learn(real)
    a = f.generate(30, seed=3, forbidden=real).values
    assert all(uuid.UUID(v).version == 4 for v in a)
    assert list(a) == list(f.generate(30, seed=3, forbidden=real).values)
    assert list(a) != list(f.generate(30, seed=4, forbidden=real).values)


def test_a_format_with_too_few_free_codes_widens_and_says_so():
    real = pd.Series([f"{a}" for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"])  # every 1-letter code
    keys = KeyFormat.learn(real).generate(40, seed=0, forbidden=real)
    assert keys.widened and len(set(keys.values)) == 40
    assert not set(keys.values) & set(real)
    assert all(re.fullmatch(r"[A-Z][0-9]+", k) for k in keys.values)


def test_integer_keys_are_the_same_drawn_against_a_mask_or_by_search(monkeypatch):
    import synth_platform.lib.keys as K

    taken = list(range(1, 10_001, 97))
    fmt = K.KeyFormat(kind="int", low=1, high=10_000)
    monkeypatch.setattr(K, "_MASK_MAX", 10**6)  # the range fits: a mask of the free integers
    masked = fmt.generate(500, seed=4, forbidden=taken)
    monkeypatch.setattr(K, "_MASK_MAX", 0)  # 20,000 integers > 8 per key: np.isin
    searched = fmt.generate(500, seed=4, forbidden=taken)
    assert list(masked.values) == list(searched.values)
    assert len(set(masked.values)) == 500 and not set(masked.values) & set(taken)
