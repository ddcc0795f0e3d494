"""The sequential CART synthesizer: shapes copulas miss, privacy safeguards, determinism."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from synth_platform.lib.cart import CartSynthesizer, default_min_leaf
from synth_platform.lib.evaluation import evaluate_fidelity

N = 3_000


def _table(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    country = rng.choice(["DE", "FR", "UK"], n, p=[0.5, 0.3, 0.2])
    currency = pd.Series(country).map({"DE": "EUR", "FR": "EUR", "UK": "GBP"}).to_numpy()
    late = rng.random(n) < np.where(country == "UK", 0.3, 0.05)
    fees = np.where(late, np.round(rng.pareto(2.0, n) * 20 + 10, 2), 0.0)  # zero-inflated
    income = np.round(rng.lognormal(10, 0.8, n), 2)
    income[rng.random(n) < 0.1] = np.nan
    store = np.array([f"s{i:03d}" for i in range(200)], dtype=object)[
        np.minimum(rng.zipf(1.3, n) - 1, 199)
    ]
    return pd.DataFrame({
        "id": np.arange(100, 100 + n),
        "country": country,
        "currency": currency,
        "late_fees": fees,
        "income": income,
        "children": rng.poisson(1.2, n),
        "store": store,
        "opened": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 2000, n), "D"),
        "flag": rng.random(n) < 0.2,
    })  # fmt: skip


SDTYPES = {
    "id": "id", "country": "categorical", "currency": "categorical",
    "late_fees": "numerical", "income": "numerical", "children": "numerical",
    "store": "categorical", "opened": "datetime", "flag": "boolean",
}  # fmt: skip


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, CartSynthesizer, pd.DataFrame]:
    real = _table()
    synth = CartSynthesizer(SDTYPES, table="t", primary_key="id", seed=3)
    synth.fit({"t": real})
    return real, synth, synth.sample(N)["t"]


def test_shapes_copulas_miss_are_kept(fitted) -> None:
    real, _, syn = fitted
    # Zero-inflation: the share of exact zeros, and positive values stay positive.
    assert abs((syn.late_fees == 0).mean() - (real.late_fees == 0).mean()) < 0.03
    assert syn.late_fees.min() >= 0 and syn.late_fees.max() <= real.late_fees.max()
    # Nulls: the missing share of income.
    assert abs(syn.income.isna().mean() - real.income.isna().mean()) < 0.03
    # Integer counts stay integers; dates stay on midnight.
    assert (syn.children == syn.children.round()).all()
    assert (syn.opened == syn.opened.dt.normalize()).all()
    # A deterministic categorical x categorical dependence survives.
    pairs = set(zip(real.country, real.currency, strict=True))
    assert np.mean([p in pairs for p in zip(syn.country, syn.currency, strict=True)]) > 0.98
    # Conditional zero-inflation (UK pays late more often) survives.
    uk = syn.country == "UK"
    assert (syn.late_fees[uk] > 0).mean() > 2 * (syn.late_fees[~uk] > 0).mean()
    # The 200-level categorical keeps most of its levels, and only real ones.
    assert set(syn.store) <= set(real.store)
    assert syn.store.nunique() > 0.6 * real.store.nunique()


def test_smoothing_never_replays_a_continuous_training_value(fitted) -> None:
    real, _, syn = fitted
    incomes = set(real.income.dropna())
    drawn = syn.income.dropna()
    assert np.mean([v in incomes for v in drawn]) < 0.01
    # Point masses are donated exactly: the zeros of late_fees.
    assert (syn.late_fees == 0).any()


def test_no_rare_training_row_is_replayed() -> None:
    # Categories, point masses and a coarse integer: honest draws often repeat training rows
    # (each combination here is held by fewer than 5 rows: all rare).
    rng = np.random.default_rng(1)
    real = pd.DataFrame({"a": rng.choice(list("xyz"), 400), "b": rng.choice([0.0, 1.0], 400),
                         "c": rng.integers(0, 200, 400)})  # fmt: skip
    unguarded = CartSynthesizer({"a": "categorical", "b": "numerical", "c": "numerical"},
                                table="t")  # fmt: skip
    unguarded.fit(real)
    unguarded._train_hashes = np.empty(0, dtype=np.uint64)  # the control: no redraws
    assert not unguarded.sample(2_000)["t"].merge(real.drop_duplicates(), on=["a", "b", "c"]).empty
    synth = CartSynthesizer({"a": "categorical", "b": "numerical", "c": "numerical"}, table="t")
    synth.fit(real)
    out = synth.sample(2_000)["t"]
    assert out.merge(real.drop_duplicates(), on=["a", "b", "c"]).empty
    assert out.a.nunique() == 3 and out.c.nunique() > 20


def test_a_zero_inflated_table_keeps_its_common_rows() -> None:
    """70% of the amounts and 95% of the fees are 0: (0, 0, grade) rows are two thirds of the
    table, each held by hundreds of rows (k-anonymous), and must be drawn as often; redrawing
    them as copies took the zero share to 0.11. Rare rows are still never replayed."""
    from synth_platform.lib.evaluation.privacy import COMMON_ROWS

    rng = np.random.default_rng(5)
    n = 3_000
    real = pd.DataFrame(
        {
            "amount": np.where(rng.random(n) < 0.7, 0.0, np.round(rng.lognormal(6, 1.5, n), 2)),
            "fees": np.where(rng.random(n) < 0.95, 0.0, np.round(rng.pareto(2, n) * 20 + 5, 2)),
            "grade": rng.choice(list("ABCD"), n),
        }
    )
    sdtypes = {"amount": "numerical", "fees": "numerical", "grade": "categorical"}
    synth = CartSynthesizer(sdtypes, table="t", seed=1)
    synth.fit(real)
    out = synth.sample(n)["t"]
    for c in ("amount", "fees"):
        assert abs((out[c] == 0).mean() - (real[c] == 0).mean()) < 0.03, c
    held = real.value_counts()
    rare = held[held < COMMON_ROWS].reset_index()[["amount", "fees", "grade"]]
    assert out.merge(rare, on=["amount", "fees", "grade"]).empty


def test_keys_are_unique_across_batches_and_sampling_is_reproducible(fitted) -> None:
    _, synth, _ = fitted
    synth.reset_sampling()
    first = pd.concat([synth.sample(700)["t"], synth.sample(700)["t"]], ignore_index=True)
    assert first.id.is_unique
    synth.reset_sampling()
    again = pd.concat([synth.sample(700)["t"], synth.sample(700)["t"]], ignore_index=True)
    pd.testing.assert_frame_equal(first, again)
    synth._set_random_state(99)
    assert not synth.sample(700)["t"].equals(first.iloc[:700])


def test_beats_a_default_gaussian_copula_on_the_same_table(fitted) -> None:
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    real, _, syn = fitted
    data = real.drop(columns="id")
    copula = GaussianCopulaSynthesizer(Metadata.detect_from_dataframes({"t": data}))
    copula.fit({"t": data})
    baseline = copula.sample(N)
    baseline = baseline["t"] if isinstance(baseline, dict) else baseline
    kinds = {
        "numeric": ["late_fees", "income", "children"],
        "datetime": ["opened"],
        "categorical": ["country", "currency", "store", "flag"],
    }
    ours = evaluate_fidelity(real=data, synthetic=syn, **kinds)
    theirs = evaluate_fidelity(real=data, synthetic=baseline, **kinds)
    assert ours.overall > theirs.overall + 0.05, (ours.overall, theirs.overall)
    worst = ours.shapes.set_index("column")["score"].min()
    assert worst > 0.85, ours.shapes


def test_tiny_and_single_column_tables() -> None:
    tiny = pd.DataFrame({"k": [1, 2, 3], "v": [1.5, None, 3.0], "c": ["a", "b", None]})
    synth = CartSynthesizer({"k": "id", "v": "numerical", "c": "categorical"}, table="t")
    synth.fit(tiny)
    out = synth.sample(10)["t"]
    assert len(out) == 10 and out.k.is_unique
    assert out.v.dropna().between(1.5, 3.0).all()
    one = CartSynthesizer({"x": "numerical"}, table="t")
    one.fit(pd.DataFrame({"x": np.arange(50.0)}))
    assert one.sample(5)["t"].x.between(0, 49).all()
    empty = CartSynthesizer({"x": "numerical", "c": "categorical"}, table="t")
    empty.fit(pd.DataFrame({"x": [np.nan] * 4, "c": ["a"] * 4}))
    assert empty.sample(3)["t"].x.isna().all()


def test_saved_model_loads_without_this_package(fitted, tmp_path) -> None:
    import subprocess
    import sys

    _, synth, _ = fitted
    path = tmp_path / "model.pkl"
    synth.save(str(path))
    synth.reset_sampling()
    expected = synth.sample(100)["t"]
    # Pickled, not Parquet: pyarrow's reader threads can abort a process at exit ("terminate
    # called without an active exception", apache/arrow#34314), ~1 run in 14 here.
    expected.to_pickle(tmp_path / "expected.pkl")
    # A process where synth_platform cannot be imported loads and samples the model.
    script = (
        "import sys, pickle; import pandas as pd; sys.modules['synth_platform'] = None\n"
        f"m = pickle.load(open({str(path)!r}, 'rb')); m.reset_sampling()\n"
        f"pd.testing.assert_frame_equal(m.sample(100)['t'], "
        f"pd.read_pickle({str(tmp_path / 'expected.pkl')!r}), check_dtype=False)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_visit_order_must_name_modelled_columns() -> None:
    synth = CartSynthesizer({"k": "id", "v": "numerical"}, table="t", visit_order=["k"])
    with pytest.raises(ValueError, match="not modelled"):
        synth.fit(pd.DataFrame({"k": [1, 2], "v": [1.0, 2.0]}))


def test_default_leaf_grows_with_the_table() -> None:
    assert default_min_leaf(100) == 20
    assert default_min_leaf(160_000) == 20
    assert default_min_leaf(1_000_000) == 50


def test_gaussian_kde_is_refused_above_its_size_with_advice() -> None:
    from synth_platform.lib.errors import TrainingError
    from synth_platform.lib.specs import TableSpec
    from synth_platform.lib.synthesis import KDE_MAX_ROWS, check_scalable

    kde = TableSpec(synthesizer="gaussian_copula",
                    parameters={"numerical_distributions": {"x": "gaussian_kde"}})  # fmt: skip
    check_scalable(table="t", spec=kde, rows=KDE_MAX_ROWS)
    with pytest.raises(TrainingError, match=r"table 't'.*gaussian_kde.*2,000.*synthesizer: cart"):
        check_scalable(table="t", spec=kde, rows=KDE_MAX_ROWS + 1)
    check_scalable(table="t", spec=TableSpec(), rows=10**7)  # the default scales


def test_training_row_lookup_matches_numpy_isin():
    from synth_platform.lib.cart import _in_sorted

    rng = np.random.default_rng(3)
    for n, m in ((0, 5), (7, 0), (1_000, 50), (2_000, 2_000)):
        train = np.unique(rng.integers(0, 3_000, size=m).astype(np.uint64))
        values = rng.integers(0, 3_500, size=n).astype(np.uint64)
        assert np.array_equal(_in_sorted(values, train), np.isin(values, train))


def test_a_category_per_few_rows_keeps_the_tree_bounded_and_every_category_drawable():
    """A categorical with thousands of levels (allowed up to half the rows) fitted after a
    numeric column: the tree splits on the frequent categories only (its classifier cost and
    node x class array would otherwise grow as rows squared), donors keep every category."""
    from synth_platform.lib.cart import MAX_TREE_CLASSES

    rng = np.random.default_rng(0)
    n = 6_000
    frame = pd.DataFrame(
        {
            "amount": rng.normal(100, 15, n),
            "product": np.array([f"p{i:04d}" for i in range(2_500)], dtype=object)[
                rng.integers(0, 2_500, n)
            ],
        }
    )
    synth = CartSynthesizer(
        {"amount": "numerical", "product": "categorical"}, table="t",
        visit_order=["amount", "product"],
    )  # fmt: skip
    synth.fit(frame)
    tree = synth._value_models["product"].tree
    assert tree is not None and tree.n_classes_ <= MAX_TREE_CLASSES + 1  # + missing
    drawn = synth.sample(n)["t"]["product"]
    assert set(drawn) <= set(frame["product"])
    rare = set(synth._columns["product"].levels[MAX_TREE_CLASSES:])
    assert rare & set(drawn)  # categories beyond the tree's classes are still donated


def test_columns_are_fitted_in_threads_and_the_model_does_not_depend_on_them(monkeypatch):
    import threading

    real = _table(1_500, seed=4)
    serial = CartSynthesizer(SDTYPES, table="t", primary_key="id", seed=3, n_jobs=1)
    serial.fit({"t": real})
    threads: set[str] = set()
    fit_column = CartSynthesizer._fit_column

    def recorded(self, *args):
        threads.add(threading.current_thread().name)
        time.sleep(0.02)  # long enough that both threads take columns
        return fit_column(self, *args)

    monkeypatch.setattr(CartSynthesizer, "_fit_column", recorded)
    lines: list[str] = []
    threaded = CartSynthesizer(SDTYPES, table="t", primary_key="id", seed=3, n_jobs=2)
    threaded.fit({"t": real}, progress=lines.append)
    assert len(threads) == 2 and all(t.startswith("cart-fit") for t in threads)
    assert list(threaded._value_models) == list(serial._value_models)  # visit order kept
    pd.testing.assert_frame_equal(serial.sample(2_000)["t"], threaded.sample(2_000)["t"])
    assert lines[-1].startswith("fit t (1,500 rows): 8 / 8 columns (100%)")


def test_a_column_that_cannot_be_fitted_fails_the_fit(monkeypatch):
    def broken(self, name, *args):
        raise MemoryError(f"column {name}")

    monkeypatch.setattr(CartSynthesizer, "_fit_column", broken)
    synth = CartSynthesizer(SDTYPES, table="t", primary_key="id", seed=3, n_jobs=2)
    with pytest.raises(MemoryError, match="column"):
        synth.fit({"t": _table(300)})
    assert not synth._fitted


def test_a_tree_splits_on_the_most_useful_earlier_columns_only():
    rng = np.random.default_rng(5)
    n = 4_000
    frame = pd.DataFrame({f"noise_{i}": rng.normal(size=n) for i in range(8)})
    frame["driver"] = rng.normal(size=n)
    frame["target"] = 3 * frame["driver"] + rng.normal(0, 0.3, n)
    order = [*[f"noise_{i}" for i in range(4)], "driver", *[f"noise_{i}" for i in range(4, 8)]]
    synth = CartSynthesizer(
        dict.fromkeys(frame.columns, "numerical"), table="t", seed=1, max_predictors=3,
        visit_order=[*order, "target"],
    )  # fmt: skip
    synth.fit(frame)
    model = synth._value_models["target"]
    assert len(model.features) == 3 and order.index("driver") in model.features
    assert all(m.features is None or len(m.features) <= 3 for m in synth._value_models.values())
    syn = synth.sample(n)["t"]
    assert syn["target"].corr(syn["driver"]) > 0.9  # the dependence is drawn, not lost
    assert synth.get_parameters()["max_predictors"] == 3


def test_screening_above_its_sample_size_with_nulls_and_a_rare_class(monkeypatch):
    import synth_platform.lib.cart as C

    rng = np.random.default_rng(9)
    n = 12_000  # above SCREEN_ROWS: the screen sees a sample of the rows
    frame = pd.DataFrame({f"noise_{i}": rng.normal(size=n) for i in range(6)})
    frame["driver"] = rng.normal(size=n)
    target = 3 * frame["driver"] + rng.normal(0, 0.3, n)
    target[rng.random(n) < 0.3] = np.nan  # the value tree is fitted on the non-null rows
    frame["target"] = target
    # One "rare" row, outside the rows the screen samples: the sample has one class, no split.
    sample = np.random.default_rng([2, 8, n]).choice(n, C.SCREEN_ROWS, replace=False)
    rare = np.full(n, "common", dtype=object)
    rare[np.setdiff1d(np.arange(n), sample)[0]] = "rare"
    frame["rare"] = rare
    order = [*[f"noise_{i}" for i in range(6)], "driver", "target", "rare"]
    synth = CartSynthesizer(
        {**dict.fromkeys(order[:-1], "numerical"), "rare": "categorical"}, table="t", seed=2,
        max_predictors=2, visit_order=order, n_jobs=2,
    )  # fmt: skip
    assert n > C.SCREEN_ROWS
    synth.fit(frame)
    value = synth._value_models["target"]
    assert len(value.features) == 2 and order.index("driver") in value.features
    assert synth._null_models["target"].features is not None
    assert synth._value_models["rare"].features is None  # no split in the sample: every column
    assert synth._value_models["rare"].tree is not None
    syn = synth.sample(n)["t"]
    assert syn["target"].corr(syn["driver"]) > 0.9
    assert abs(syn["target"].isna().mean() - 0.3) < 0.03
    # The same model with every column: the screen only drops what the trees barely use.
    full = CartSynthesizer(synth.sdtypes, table="t", seed=2, max_predictors=None, visit_order=order)
    full.fit(frame)
    assert full._value_models["target"].features is None


def test_thread_count_is_validated_and_configurable(monkeypatch):
    import synth_platform.lib.cart as C

    with pytest.raises(ValueError, match="n_jobs"):
        CartSynthesizer(SDTYPES, table="t", n_jobs=-1)
    monkeypatch.setenv("SYNTH_CART_THREADS", "3")
    assert C._default_threads() == 3
    monkeypatch.setenv("SYNTH_CART_THREADS", "many")
    with pytest.raises(ValueError, match="SYNTH_CART_THREADS"):
        C._default_threads()
    monkeypatch.delenv("SYNTH_CART_THREADS")
    assert 1 <= C._default_threads() <= C.MAX_DEFAULT_THREADS


def test_a_refit_keeps_nothing_of_the_previous_fit():
    with_nulls = _table(800, seed=1)
    synth = CartSynthesizer(SDTYPES, table="t", primary_key="id", seed=3, n_jobs=1)
    synth.fit({"t": with_nulls})
    assert "income" in synth._null_models
    synth.fit({"t": with_nulls.assign(income=with_nulls.income.fillna(1.0))})
    assert "income" not in synth._null_models
    with pytest.raises(ValueError, match="not in the training data"):
        synth.fit({"t": with_nulls.drop(columns="income")})
    assert not synth._fitted
