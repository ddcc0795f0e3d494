"""Multi-table groups, re-keying and the relationship gates (synth_platform.lib.multitable)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bank_example.generator import DemoSize, generate_bank
from synth_platform.lib.errors import SpecError, TrainingError
from synth_platform.lib.metadata import derive_metadata
from synth_platform.lib.multitable import (
    Relationship,
    TableGroup,
    choose_strategy,
    evaluate_cardinality,
    evaluate_cross_table_trends,
    evaluate_integrity,
    fit_hma,
    groups_from_specs,
    hma_limits,
    rekey_children,
    sample_hma,
    sdv_multi_metadata,
    split_group,
)
from synth_platform.lib.specs import ModelSpec, TableSpec

_PII = {
    "customers": {
        "full_name": "name",
        "email": "email",
        "phone": "phone_number",
        "national_id": "ssn",
        "street_address": "street_address",
    }
}


def _model(name: str, pk: str, rels: tuple[tuple[str, str, str], ...] = ()) -> ModelSpec:
    return ModelSpec(
        name=name,
        unique_id=f"model.bank.{name}",
        relation=f"main.{name}",
        spec=TableSpec(synthesizer="gaussian_copula", pii=_PII.get(name, {})),
        columns={},
        unique_columns=frozenset({pk}),
        not_null_columns=frozenset({pk}),
        relationships=rels,
    )


def _bank_models() -> list[ModelSpec]:
    return [
        _model("transactions", "transaction_id", (("account_id", "accounts", "account_id"),)),
        _model("customers", "customer_id"),
        _model("accounts", "account_id", (("customer_id", "customers", "customer_id"),)),
    ]


@pytest.fixture(scope="module")
def bank() -> dict[str, pd.DataFrame]:
    return generate_bank(size=DemoSize(customers=150), seed=3)


@pytest.fixture(scope="module")
def group() -> TableGroup:
    (g,) = groups_from_specs(_bank_models())
    return g


def _independent_synthetic(real: dict[str, pd.DataFrame], seed: int) -> dict[str, pd.DataFrame]:
    """Stand-in for single-table synthesis: resampled rows, new keys, foreign keys dropped."""
    rng = np.random.default_rng(seed)
    sizes = {"customers": 140, "accounts": 260, "transactions": 2100}
    keys = {"customers": "customer_id", "accounts": "account_id", "transactions": "transaction_id"}
    out = {}
    for table, n in sizes.items():
        frame = real[table].iloc[rng.integers(0, len(real[table]), n)].reset_index(drop=True)
        frame[keys[table]] = np.arange(n, dtype=np.int64) + 900_000 + 10_000 * len(out)
        out[table] = frame
    out["accounts"] = out["accounts"].drop(columns="customer_id")
    out["transactions"] = out["transactions"].drop(columns="account_id")
    return out


# ----------------------------------------------------------------------------- groups


def test_groups_are_topologically_ordered(group: TableGroup) -> None:
    assert group.tables == ("customers", "accounts", "transactions")
    assert group.name == "customers"
    assert group.depth == 3
    assert [r.key for r in group.relationships] == [
        "accounts.customer_id->customers.customer_id",
        "transactions.account_id->accounts.account_id",
    ]


def test_unrelated_models_form_no_group_unless_asked() -> None:
    models = [*_bank_models(), _model("branches", "branch_id")]
    assert [g.name for g in groups_from_specs(models)] == ["customers"]
    singles = groups_from_specs(models, include_single=True)
    assert [g.tables for g in singles] == [("branches",), ("customers", "accounts", "transactions")]


def test_relationship_to_a_model_not_opted_in_names_both() -> None:
    models = [_model("accounts", "account_id", (("customer_id", "customers", "customer_id"),))]
    with pytest.raises(SpecError) as err:
        groups_from_specs(models)
    message = str(err.value)
    assert "'accounts'" in message and "'customers'" in message
    assert "not opted in" in message and "relationships: []" in message


def test_cycle_names_both_models() -> None:
    models = [
        _model("a", "id", (("b_id", "b", "id"),)),
        _model("b", "id", (("a_id", "a", "id"),)),
    ]
    with pytest.raises(SpecError, match="cycle") as err:
        groups_from_specs(models)
    assert "'a'" in str(err.value) and "'b'" in str(err.value)


def test_relationship_must_reference_the_parent_primary_key() -> None:
    models = [
        _model("customers", "customer_id"),
        _model("accounts", "account_id", (("customer_email", "customers", "email"),)),
    ]
    with pytest.raises(SpecError, match="primary key") as err:
        groups_from_specs(models)
    assert "accounts.customer_email" in str(err.value)


def test_hma_limits_and_strategy(group: TableGroup) -> None:
    assert "chain of 3" in (hma_limits(group) or "")
    strategy, why = choose_strategy(group, {"customers": 10})
    assert strategy == "independent" and "HMA refuses" in why
    with pytest.raises(SpecError, match="independent"):
        choose_strategy(group, {}, requested="hma")
    pair = TableGroup("customers", ("customers", "accounts"), group.relationships[:1])
    assert hma_limits(pair) is None
    assert choose_strategy(pair, {"customers": 10, "accounts": 20})[0] == "hma"
    assert choose_strategy(pair, {"customers": 10, "accounts": 20}, max_rows=5)[0] == (
        "independent"
    )


def test_multi_metadata_marks_keys(bank: dict[str, pd.DataFrame], group: TableGroup) -> None:
    models = {m.name: m for m in _bank_models()}
    single = {t: derive_metadata(data=bank[t], model=models[t])[1] for t in group.tables}
    assert single["accounts"]["tables"]["accounts"]["columns"]["customer_id"] == {
        "sdtype": "numerical"
    }
    meta = sdv_multi_metadata(group, bank, single)
    assert meta["tables"]["accounts"]["columns"]["customer_id"] == {"sdtype": "id"}
    assert meta["tables"]["customers"]["primary_key"] == "customer_id"
    assert "email" not in meta["tables"]["customers"]["columns"]
    assert meta["relationships"][1] == {
        "parent_table_name": "accounts",
        "child_table_name": "transactions",
        "parent_primary_key": "account_id",
        "child_foreign_key": "account_id",
    }
    del single["transactions"]["tables"]["transactions"]["columns"]["account_id"]
    with pytest.raises(SpecError, match="account_id"):
        sdv_multi_metadata(group, bank, single)


# ---------------------------------------------------------------------------- re-keying


def test_rekey_resolves_every_key_and_keeps_cardinality(
    bank: dict[str, pd.DataFrame], group: TableGroup
) -> None:
    synthetic = rekey_children(
        group=group, real=bank, synthetic=_independent_synthetic(bank, 1), seed=5
    )
    assert list(synthetic["accounts"].columns) == list(bank["accounts"].columns)
    assert synthetic["accounts"]["customer_id"].dtype == np.int64
    for result in evaluate_integrity(group=group, synthetic=synthetic).values():
        assert result.share == 1.0 and result.orphans == 0 and result.passed
    for key, result in evaluate_cardinality(group=group, real=bank, synthetic=synthetic).items():
        assert result.score >= 0.9, key
        assert result.synthetic_mean == pytest.approx(result.real_mean, rel=0.1)
    again = rekey_children(
        group=group, real=bank, synthetic=_independent_synthetic(bank, 1), seed=5
    )
    pd.testing.assert_frame_equal(again["transactions"], synthetic["transactions"])


def test_rekey_keeps_the_real_null_share() -> None:
    rel = Relationship("child", "parent_id", "parent", "id")
    g = TableGroup("parent", ("parent", "child"), (rel,))
    real = {
        "parent": pd.DataFrame({"id": [1, 2, 3, 4]}),
        "child": pd.DataFrame({"parent_id": [1, 1, 2, None, None, 4, 4, 4, None, 3]}),
    }
    synthetic = {
        "parent": pd.DataFrame({"id": np.arange(10, 50)}),
        "child": pd.DataFrame({"value": np.arange(100)}),
    }
    out = rekey_children(group=g, real=real, synthetic=synthetic, seed=0)
    keys = out["child"]["parent_id"]
    assert keys.isna().sum() == 30
    assert keys.dtype == "Int64"
    assert evaluate_integrity(group=g, synthetic=out)[rel.key].share == 1.0


def test_planted_orphans_fail_integrity(bank: dict[str, pd.DataFrame], group: TableGroup) -> None:
    synthetic = rekey_children(
        group=group, real=bank, synthetic=_independent_synthetic(bank, 2), seed=0
    )
    broken = dict(synthetic)
    tx = broken["transactions"].copy()
    rng = np.random.default_rng(0)
    planted = rng.choice(len(tx), 100, replace=False)
    tx.loc[planted, "account_id"] = rng.integers(10**9, 2 * 10**9, 100)
    broken["transactions"] = tx
    result = evaluate_integrity(group=group, synthetic=broken)
    bad = result["transactions.account_id->accounts.account_id"]
    assert bad.share < 1.0 and bad.orphans == 100 and not bad.passed
    assert result["accounts.customer_id->customers.customer_id"].passed


def test_duplicate_parent_keys_fail_integrity() -> None:
    rel = Relationship("child", "parent_id", "parent", "id")
    g = TableGroup("parent", ("parent", "child"), (rel,))
    synthetic = {
        "parent": pd.DataFrame({"id": [1, 1, 2]}),
        "child": pd.DataFrame({"parent_id": [1, 2]}),
    }
    result = evaluate_integrity(group=g, synthetic=synthetic)[rel.key]
    assert result.share == 1.0 and result.duplicate_parent_keys == 2 and not result.passed


def test_split_group_keeps_training_keys_resolvable(
    bank: dict[str, pd.DataFrame], group: TableGroup
) -> None:
    train, holdout = split_group(group=group, frames=bank, holdout=0.2, seed=0)
    assert len(holdout["customers"]) == 30
    for table in group.tables:
        assert len(train[table]) + len(holdout[table]) == len(bank[table])
    assert all(r.passed for r in evaluate_integrity(group=group, synthetic=train).values())
    assert all(r.passed for r in evaluate_integrity(group=group, synthetic=holdout).values())


# -------------------------------------------------------------------------------- gates


def test_cardinality_matches_sdmetrics(bank: dict[str, pd.DataFrame], group: TableGroup) -> None:
    from sdmetrics.multi_table import CardinalityShapeSimilarity

    synthetic = rekey_children(
        group=group, real=bank, synthetic=_independent_synthetic(bank, 3), seed=1
    )
    # Add null keys and orphans: both are ignored by the cardinality distribution.
    tx = synthetic["transactions"].copy()
    tx["account_id"] = tx["account_id"].astype("float64")
    tx.loc[:49, "account_id"] = np.nan
    tx.loc[50:59, "account_id"] = -1.0
    synthetic["transactions"] = tx
    single = {m.name: derive_metadata(data=bank[m.name], model=m)[1] for m in _bank_models()}
    meta = sdv_multi_metadata(group, bank, single)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = CardinalityShapeSimilarity.compute_breakdown(bank, synthetic, meta)
    ours = evaluate_cardinality(group=group, real=bank, synthetic=synthetic)
    for r in group.relationships:
        assert ours[r.key].score == pytest.approx(expected[(r.parent, r.child)]["score"], abs=1e-9)
    assert ours[group.relationships[0].key].real_zero_share == 0.0


def test_cross_table_trends_see_lost_correlations() -> None:
    rng = np.random.default_rng(0)
    n_parent = 300
    parent = pd.DataFrame({"id": np.arange(n_parent), "income": rng.lognormal(10, 0.5, n_parent)})
    parent_of_child = rng.integers(0, n_parent, 3000)
    child = pd.DataFrame(
        {
            "child_id": np.arange(3000),
            "parent_id": parent_of_child,
            "spend": parent["income"].to_numpy()[parent_of_child] * rng.uniform(0.9, 1.1, 3000),
        }
    )
    rel = Relationship("child", "parent_id", "parent", "id")
    g = TableGroup("parent", ("parent", "child"), (rel,))
    from synth_platform.lib.metadata import TableMetadata

    tables = {
        "parent": TableMetadata("parent", "id", ("income",), (), (), columns=("id", "income")),
        "child": TableMetadata(
            "child", "child_id", ("parent_id", "spend"), (), (), columns=tuple(child.columns)
        ),
    }
    real = {"parent": parent, "child": child}
    same = evaluate_cross_table_trends(group=g, real=real, synthetic=real, tables=tables)[rel.key]
    assert same.score == pytest.approx(1.0)
    assert list(zip(same.pairs["column_1"], same.pairs["column_2"], strict=True)) == [
        ("child.spend", "parent.income")
    ]  # keys are not scored, within-table pairs are dropped
    shuffled = rekey_children(group=g, real=real, synthetic=real, seed=0)
    lost = evaluate_cross_table_trends(group=g, real=real, synthetic=shuffled, tables=tables)
    assert lost[rel.key].counted_score < 0.7
    # Matched re-keying pairs children with parents of the right profile: the trend survives.
    profiles = {
        "parent": tables["parent"],
        "child": TableMetadata(
            "child", "child_id", ("spend",), (), (), columns=tuple(child.columns)
        ),
    }
    synthetic = {
        "parent": parent.assign(id=parent["id"] + 10_000),  # new keys, same profiles
        "child": child.sample(frac=1.0, random_state=1).drop(columns="parent_id"),
    }
    matched = rekey_children(group=g, real=real, synthetic=synthetic, seed=0, profiles=profiles)
    assert evaluate_integrity(group=g, synthetic=matched)[rel.key].passed
    kept = evaluate_cross_table_trends(group=g, real=real, synthetic=matched, tables=tables)
    assert kept[rel.key].counted_score > 0.9
    card = evaluate_cardinality(group=g, real=real, synthetic=matched)[rel.key]
    assert card.score > 0.9 and card.synthetic_mean == pytest.approx(card.real_mean)


def _bank_profiles(bank: dict[str, pd.DataFrame], group: TableGroup) -> dict[str, Any]:
    """The demo tables' metadata, foreign keys marked: what matched re-keying compares."""
    models = {m.name: m for m in _bank_models()}
    return {
        t: derive_metadata(
            data=bank[t], model=models[t],
            foreign_keys=tuple(r.child_column for r in group.relationships if r.child == t),
        )[0]
        for t in group.tables
    }  # fmt: skip


def test_matched_rekeying_keeps_demo_dependencies(bank: dict[str, pd.DataFrame], group) -> None:
    profiles = _bank_profiles(bank, group)
    synthetic = _independent_synthetic(bank, 2)
    random_keys = rekey_children(group=group, real=bank, synthetic=synthetic, seed=4)
    matched = rekey_children(group=group, real=bank, synthetic=synthetic, seed=4, profiles=profiles)
    for result in evaluate_integrity(group=group, synthetic=matched).values():
        assert result.passed
    scores = {}
    for name, frames in (("random", random_keys), ("matched", matched)):
        trends = evaluate_cross_table_trends(
            group=group, real=bank, synthetic=frames, tables=profiles
        )
        scores[name] = np.mean([t.score for t in trends.values()])
    assert scores["matched"] > scores["random"] + 0.03, scores
    for key, result in evaluate_cardinality(group=group, real=bank, synthetic=matched).items():
        assert result.score >= 0.85, key


# ---------------------------------------------------------------------------------- HMA


def test_hma_on_a_tiny_pair_keeps_keys_resolvable() -> None:
    bank = generate_bank(size=DemoSize(customers=40), seed=11)
    models = [_model("customers", "customer_id"), _bank_models()[2]]
    (g,) = groups_from_specs(models)
    frames = {t: bank[t] for t in g.tables}
    single = {m.name: derive_metadata(data=frames[m.name], model=m)[1] for m in models}
    meta = sdv_multi_metadata(g, frames, single)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_hma(group=g, frames=frames, metadata=meta, seed=0)
        synthetic = sample_hma(synthesizer=fit.synthesizer, scale=1.0, seed=1)
        again = sample_hma(synthesizer=fit.synthesizer, scale=1.0, seed=1)
    assert set(synthetic) == {"customers", "accounts"}
    assert len(synthetic["customers"]) == 40
    assert all(r.passed for r in evaluate_integrity(group=g, synthetic=synthetic).values())
    pd.testing.assert_frame_equal(synthetic["accounts"], again["accounts"])


def test_hma_refuses_a_deep_chain(bank: dict[str, pd.DataFrame], group: TableGroup) -> None:
    with pytest.raises(TrainingError, match="independent"):
        fit_hma(group=group, frames=bank, metadata={}, seed=0)


def test_auto_strategy_skips_hma_when_a_table_setting_would_be_dropped(group) -> None:
    from synth_platform.lib.group import hma_unsupported, requested_strategy

    pair = TableGroup("customers", ("customers", "accounts"), group.relationships[:1])
    models = {m.name: m for m in _bank_models()}
    assert choose_strategy(pair, {"customers": 10, "accounts": 20})[0] == "hma"
    kde = ModelSpec(
        **{**models["accounts"].__dict__,
           "spec": TableSpec(synthesizer="gaussian_copula",
                                parameters={"default_distribution": "gaussian_kde"})}
    )  # fmt: skip
    unsupported = hma_unsupported({**models, "accounts": kde}, pair.tables)
    assert unsupported == {"accounts": "uses gaussian_kde"}
    strategy, reason = choose_strategy(pair, {}, unsupported=unsupported)
    assert strategy == "independent" and "'accounts' uses gaussian_kde" in reason
    from synth_platform.lib.group import group_strategy  # what train_group calls

    assert group_strategy(pair, {**models, "accounts": kde}, {})[0] == "independent"
    # The default synthesizer (sequential CART) is not HMA's: `auto` keeps it.
    cart = ModelSpec(**{**models["accounts"].__dict__, "spec": TableSpec()})
    assert hma_unsupported({**models, "accounts": cart}, pair.tables) == {"accounts": "uses cart"}
    assert group_strategy(pair, {**models, "accounts": cart}, {})[0] == "independent"
    assert group_strategy(pair, models, {"customers": 10, "accounts": 20})[0] == "hma"
    assert requested_strategy(pair, models) == "auto"
    clash = {
        "customers": ModelSpec(**{**models["customers"].__dict__,
                                  "spec": TableSpec(multi_table="hma")}),
        "accounts": ModelSpec(**{**models["accounts"].__dict__,
                                 "spec": TableSpec(multi_table="independent")}),
    }  # fmt: skip
    with pytest.raises(SpecError, match="'accounts' asks for 'independent' but 'customers'"):
        requested_strategy(pair, clash)


def test_group_suites_follow_the_foreign_keys(tmp_path) -> None:
    import json

    from synth_platform.lib.errors import ProjectError
    from synth_platform.lib.group import ensure_group_suite
    from synth_platform.lib.specs import Thresholds

    mine, generated = tmp_path / "mine", tmp_path / "generated"
    path = ensure_group_suite(
        directory=mine, generated=generated, table="t", kind="cardinality", foreign_keys=["a"],
        thresholds=Thresholds(cardinality=0.9),
    )  # fmt: skip
    assert path.parent == generated
    suite = json.loads(path.read_text())
    assert [e["kwargs"] for e in suite["expectations"]] == [
        {"column": "cardinality__a", "min_value": 0.9}
    ]
    suite["expectations"][0]["kwargs"]["min_value"] = 0.95  # a reviewer's own suite is kept
    mine.mkdir()
    (mine / "t.cardinality.json").write_text(json.dumps(suite))
    own = ensure_group_suite(
        directory=mine, generated=generated, table="t", kind="cardinality", foreign_keys=["a"],
        thresholds=Thresholds(),
    )  # fmt: skip
    assert own == mine / "t.cardinality.json"
    assert json.loads(own.read_text())["expectations"][0]["kwargs"]["min_value"] == 0.95
    with pytest.raises(ProjectError, match="cardinality__b"):  # a new key is never unchecked
        ensure_group_suite(
            directory=mine, generated=generated, table="t", kind="cardinality",
            foreign_keys=["a", "b"], thresholds=Thresholds(),
        )  # fmt: skip
    (mine / "t.cardinality.json").unlink()
    path = ensure_group_suite(
        directory=mine, generated=generated, table="t", kind="cardinality",
        foreign_keys=["a", "b"], thresholds=Thresholds(),
    )  # fmt: skip
    columns = [e["kwargs"]["column"] for e in json.loads(path.read_text())["expectations"]]
    assert columns == ["cardinality__a", "cardinality__b"]  # a new key is never left unchecked


def test_matched_rekeying_copes_with_text_keys_and_empty_real_children() -> None:
    from synth_platform.lib.metadata import TableMetadata

    rel = Relationship("child", "parent_id", "parent", "id")
    g = TableGroup("parent", ("parent", "child"), (rel,))
    rng = np.random.default_rng(0)
    parent = pd.DataFrame({"id": np.arange(40), "income": rng.lognormal(10, 0.5, 40)})
    owner = rng.integers(0, 40, 300)
    child = pd.DataFrame(
        {"parent_id": owner.astype(str), "spend": parent["income"].to_numpy()[owner]}
    )  # text foreign keys against integer parent keys
    profiles = {
        "parent": TableMetadata("parent", "id", ("income",), (), (), columns=("id", "income")),
        "child": TableMetadata("child", None, ("spend",), (), (), columns=tuple(child.columns)),
    }
    synthetic = {"parent": parent.assign(id=parent["id"] + 1000), "child": child[["spend"]]}
    real = {"parent": parent, "child": child.assign(parent_id=owner)}
    out = rekey_children(group=g, real=real, synthetic=synthetic, seed=0, profiles=profiles)
    mixed = rekey_children(
        group=g, real={"parent": parent, "child": child}, synthetic=synthetic, seed=0,
        profiles=profiles,
    )  # fmt: skip
    pd.testing.assert_frame_equal(out["child"], mixed["child"])  # text keys still match
    empty = {"parent": parent, "child": child.iloc[:0]}
    none = rekey_children(group=g, real=empty, synthetic=synthetic, seed=0, profiles=profiles)
    assert evaluate_integrity(group=g, synthetic=none)[rel.key].passed


def test_groups_get_readable_names() -> None:
    """One root names its group; a star schema is named after its fact table."""
    (chain,) = groups_from_specs(_bank_models())
    assert chain.label == "customers"
    star = [
        _model("airlines", "carrier"),
        _model("airports", "faa"),
        _model("planes", "tailnum"),
        _model("flights", "flight_id", (("carrier", "airlines", "carrier"),
                                        ("origin", "airports", "faa"),
                                        ("tailnum", "planes", "tailnum"))),
    ]  # fmt: skip
    (group,) = groups_from_specs(star)
    assert group.label == "flights"
    assert group.name == "airlines+airports+planes"


# ------------------------------------------------------------------- matched re-keying at scale


def _planted_pair(children: int, seed: int) -> dict[str, pd.DataFrame]:
    """Customers (segment, income) and transactions whose amount follows the customer's
    income and whose channel follows the segment; ten transactions per customer on average."""
    rng = np.random.default_rng(seed)
    n = children // 10
    segment = rng.integers(0, 3, n)
    income = rng.lognormal(10 + 0.5 * segment, 0.4)
    owner = rng.integers(0, n, children)
    channel = np.where(rng.random(children) < 0.8, segment[owner], rng.integers(0, 3, children))
    return {
        "parent": pd.DataFrame(
            {"id": np.arange(n), "segment": np.array(["a", "b", "c"])[segment], "income": income}
        ),
        "child": pd.DataFrame(
            {
                "parent_id": owner,
                "amount": income[owner] * rng.lognormal(0.0, 0.2, children),
                "channel": np.array(["x", "y", "z"])[channel],
            }
        ),
    }


_PLANTED = TableGroup(
    "parent", ("parent", "child"), (Relationship("child", "parent_id", "parent", "id"),)
)


def _planted_profiles() -> dict:
    from synth_platform.lib.metadata import TableMetadata

    return {
        "parent": TableMetadata(
            "parent", "id", ("income",), (), ("segment",), columns=("id", "segment", "income")
        ),
        "child": TableMetadata(
            "child", None, ("amount",), (), ("channel",),
            columns=("parent_id", "amount", "channel"), foreign_keys=("parent_id",),
        ),
    }  # fmt: skip


def _planted_synthetic(children: int, seed: int) -> dict[str, pd.DataFrame]:
    frames = _planted_pair(children, seed)
    return {
        "parent": frames["parent"].assign(id=frames["parent"]["id"] + 10**6),
        "child": frames["child"].drop(columns="parent_id"),
    }


def test_matched_rekeying_is_deterministic_for_a_seed() -> None:
    real, synthetic = _planted_pair(3000, 0), _planted_synthetic(3000, 1)
    profiles = _planted_profiles()

    def keys(seed: int) -> pd.Series:
        out = rekey_children(
            group=_PLANTED, real=real, synthetic=synthetic, seed=seed, profiles=profiles
        )
        return out["child"]["parent_id"]

    first = keys(7)
    pd.testing.assert_series_equal(first, keys(7))
    assert not first.equals(keys(8))


def test_matched_rekeying_gives_each_parent_exactly_its_capacity() -> None:
    """Synthetic parents that are exact twins of the real ones (new keys) take their twin's
    child count, scaled to the synthetic child rows (here exactly twice)."""
    real = _planted_pair(4000, 2)
    real_counts = real["child"]["parent_id"].value_counts()
    parents = real["parent"].assign(id=real["parent"]["id"] + 10**6)
    children = pd.concat([real["child"]] * 2, ignore_index=True).drop(columns="parent_id")
    out = rekey_children(
        group=_PLANTED, real=real, synthetic={"parent": parents, "child": children}, seed=3,
        profiles=_planted_profiles(),
    )  # fmt: skip
    got = out["child"]["parent_id"].value_counts().reindex(parents["id"], fill_value=0)
    expected = real_counts.reindex(real["parent"]["id"], fill_value=0) * 2
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())


def test_matched_rekeying_keeps_a_planted_dependency_that_random_pairing_loses() -> None:
    real, synthetic = _planted_pair(6000, 4), _planted_synthetic(6000, 5)
    profiles = _planted_profiles()
    scores = {}
    for name, matched in (("random", None), ("matched", profiles)):
        out = rekey_children(
            group=_PLANTED, real=real, synthetic=synthetic, seed=0, profiles=matched
        )
        assert evaluate_integrity(group=_PLANTED, synthetic=out)[
            "child.parent_id->parent.id"
        ].passed
        trends = evaluate_cross_table_trends(
            group=_PLANTED, real=real, synthetic=out, tables=profiles
        )
        scores[name] = trends["child.parent_id->parent.id"].score
    assert scores["matched"] > 0.9 and scores["matched"] > scores["random"] + 0.15, scores


def test_matched_rekeying_reports_progress_per_chunk() -> None:
    real, synthetic = _planted_pair(3000, 0), _planted_synthetic(3000, 1)
    calls: list[tuple[int, int]] = []
    rekey_children(
        group=_PLANTED, real=real, synthetic=synthetic, seed=0, profiles=_planted_profiles(),
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    assert calls and calls[-1] == (3000, 3000)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


_INTERRUPTED = """
import signal, sys, time
import numpy as np
from tests.unit.test_multitable import _PLANTED, _planted_pair, _planted_profiles, _planted_synthetic
from synth_platform.lib.multitable import rekey_children

def stop(signum, frame):  # what Dagster's run termination does: raise in the main thread
    raise KeyboardInterrupt

signal.signal(signal.SIGTERM, stop)
real, synthetic = _planted_pair(300_000, 0), _planted_synthetic(300_000, 1)

def progress(done, total):
    print(f"{done} {total}", flush=True)

try:
    rekey_children(group=_PLANTED, real=real, synthetic=synthetic, seed=0,
                   profiles=_planted_profiles(), progress=progress)
except KeyboardInterrupt:
    print(f"interrupted {time.time()}", flush=True)
    sys.exit(3)
print("finished", flush=True)
"""


def test_matched_rekeying_stops_soon_after_sigterm() -> None:
    """A large re-keying runs in chunks, so a signal handler runs within about a second
    (measured in the child when it catches the interrupt: its interpreter's shutdown after
    that, with Dagster and MLflow imported, takes seconds on a loaded machine)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED], cwd=root, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    try:
        first = proc.stdout.readline()  # the first chunk is done: the re-keying is under way
        assert first.split()[1] == "300000", first
        sent = time.time()
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    rest = proc.stdout.read().split("\n")
    caught = [float(line.split()[1]) for line in rest if line.startswith("interrupted")]
    assert proc.returncode == 3 and caught, rest
    assert caught[0] - sent < 1.5, caught[0] - sent


def _star_model(name, pk, rels=(), *, mode="synthesize", warn=frozenset()):
    return ModelSpec(
        name=name, unique_id=f"model.star.{name}", relation=f"main.{name}",
        spec=TableSpec(mode=mode), columns={}, unique_columns=frozenset({pk}),
        not_null_columns=frozenset({pk}), relationships=rels, warn_relationships=warn,
    )  # fmt: skip


def test_reference_parents_stay_outside_groups_and_their_keys_are_checked():
    models = [
        _star_model("carriers", "carrier", mode="reference"),
        _star_model("planes", "tailnum"),
        _star_model(
            "flights",
            "flight_id",
            (("carrier", "carriers", "carrier"), ("tailnum", "planes", "tailnum")),
            warn=frozenset({"tailnum"}),
        ),  # fmt: skip
        _star_model("logs", "log_id", (("carrier", "carriers", "carrier"),)),
    ]
    groups = {g.name: g for g in groups_from_specs(models)}
    # planes -> flights is a group (re-keyed); `logs` has only a reference key: a group of one.
    assert set(groups) == {"planes", "logs"}
    star = groups["planes"]
    assert star.tables == ("planes", "flights")
    assert [(r.child_column, r.reference, r.orphans) for r in star.relationships] == [
        ("tailnum", False, True)
    ]
    assert [(r.child_column, r.parent, r.reference) for r in star.references] == [
        ("carrier", "carriers", True)
    ]
    assert [r.child_column for r in star.checked_relationships] == ["tailnum", "carrier"]
    assert groups["logs"].tables == ("logs",) and groups["logs"].relationships == ()


def test_a_reference_table_cannot_point_at_a_synthesized_one_nor_declare_pii():
    models = [
        _star_model("planes", "tailnum"),
        _star_model("types", "type_id", (("tailnum", "planes", "tailnum"),), mode="reference"),
    ]
    with pytest.raises(SpecError, match="reference table 'types'.*'planes', which is synthesized"):
        groups_from_specs(models)
    with pytest.raises(ValueError, match="must hold no personal data"):
        TableSpec(mode="reference", pii={"email": "email"})


def test_orphan_keys_keep_the_real_share_in_the_parent_keys_format():
    rng = np.random.default_rng(0)
    parents = pd.DataFrame({"tailnum": [f"N{i}AB" for i in range(100, 300)]})
    fk = rng.choice(parents["tailnum"], 2_000).astype(object)
    orphan = rng.random(2_000) < 0.05
    fk[orphan] = [f"N{i}ZZ" for i in range(int(orphan.sum()))]
    real = {"planes": parents, "flights": pd.DataFrame({"flight_id": range(2_000), "tailnum": fk})}
    group = TableGroup(
        "planes", ("planes", "flights"),
        (Relationship("flights", "tailnum", "planes", "tailnum", orphans=True),),
    )  # fmt: skip
    synthetic = {
        "planes": pd.DataFrame({"tailnum": [f"N{i}CD" for i in range(100, 250)]}),
        "flights": pd.DataFrame({"flight_id": range(1_000)}),
    }
    out = rekey_children(group=group, real=real, synthetic=synthetic, seed=1)
    keys = out["flights"]["tailnum"]
    lost = ~keys.isin(synthetic["planes"]["tailnum"])
    assert abs(lost.mean() - orphan.mean()) < 0.005
    assert not keys[lost].isin(real["flights"]["tailnum"]).any()  # fresh, never real
    # The parent keys' format (N, 3 digits, the fixed AB); every such code is a real key here,
    # so the format widens by digits at the end.
    assert keys[lost].str.fullmatch(r"N[12]\d{2}AB\d+").all()
    shares = evaluate_integrity(group=group, synthetic=out)
    assert shares[group.relationships[0].key].orphans == int(lost.sum())


def test_keys_into_a_small_reference_table_are_scored_per_parent() -> None:
    """A twin drawn from the real shares of a 12-row lookup passes; KS over 12 parents cannot
    tell it from noise (its floor is ~0.24), and a twin that keeps the shape but swaps which
    lookup rows are used fails; a key into many sparsely used rows keeps SDMetrics' KS."""
    lookup = pd.DataFrame({"code": [f"K{i:02d}" for i in range(12)]})
    shares = np.linspace(1.0, 2.0, 12)
    shares /= shares.sum()

    def visits(n: int, p: np.ndarray, codes: pd.Series, seed: int) -> pd.DataFrame:
        draw = np.random.default_rng(seed).choice(codes.to_numpy(), size=n, p=p)
        return pd.DataFrame({"visit_id": np.arange(n), "code": draw})

    rel = Relationship("visits", "code", "lookup", "code", reference=True)
    group = TableGroup("visits", ("visits",), (rel,))
    real = {"lookup": lookup, "visits": visits(3000, shares, lookup["code"], 1)}
    scores = []
    for seed in range(2, 12):
        twin = {"lookup": lookup, "visits": visits(3000, shares, lookup["code"], seed)}
        scores.append(evaluate_cardinality(group=group, real=real, synthetic=twin)[rel.key])
    assert {s.method for s in scores} == {"share_per_reference_parent"}
    assert min(s.score for s in scores) > 0.95
    assert min(s.ks_score for s in scores) < 0.8  # what blocked healthy twins before
    assert all(s.share_noise < s.ks_noise for s in scores)
    swapped = {"lookup": lookup, "visits": visits(3000, shares[::-1], lookup["code"], 2)}
    bad = evaluate_cardinality(group=group, real=real, synthetic=swapped)[rel.key]
    assert bad.score < 0.85 and bad.method == "share_per_reference_parent"
    # The same shares among the keys it resolves, but half its keys null: the rows without a
    # parent are a cell of their own, and the twin fails.
    nulled = visits(3000, shares, lookup["code"], 3)
    nulled.loc[::2, "code"] = None
    half = evaluate_cardinality(group=group, real=real, synthetic={"lookup": lookup,
                                                                    "visits": nulled})[rel.key]  # fmt: skip
    assert half.method == "share_per_reference_parent" and half.score < 0.6

    # 2,000 lookup rows for 3,000 children: per-row shares are noise, KS is the sharper test.
    big = pd.DataFrame({"code": np.arange(2000)})
    real = {"lookup": big, "visits": visits(3000, np.full(2000, 1 / 2000), big["code"], 1)}
    twin = {"lookup": big, "visits": visits(3000, np.full(2000, 1 / 2000), big["code"], 2)}
    res = evaluate_cardinality(group=group, real=real, synthetic=twin)[rel.key]
    assert res.method == "ks_children_per_parent" and res.score == res.ks_score
    assert res.score > 0.9 and res.share_score < res.score


def _wide_pair(children: int, seed: int) -> dict[str, pd.DataFrame]:
    """Parents with a heavy-tailed income; children whose amount follows it, next to columns
    that say nothing about the parent and vary more once scaled (a uniform number, two
    skewed 12-code categories): the shape of flights with their carrier and date."""
    rng = np.random.default_rng(seed)
    n = children // 10
    income = rng.lognormal(10, 1.0, n)
    owner = rng.integers(0, n, children)
    skew = np.r_[0.45, 0.35, np.full(10, 0.02)]
    child = pd.DataFrame(
        {
            "parent_id": owner,
            "amount": income[owner] * rng.lognormal(0.0, 0.1, children),
            "when": rng.uniform(0, 1, children),
            **{f"c{i}": rng.choice(list("pqrstuvwxyzo"), children, p=skew) for i in range(2)},
        }
    )
    return {"parent": pd.DataFrame({"id": np.arange(n), "income": income}), "child": child}


def test_matched_rekeying_matches_on_what_the_child_says_about_its_parent() -> None:
    """The child's own principal components are the noise here (amount.income: 0.53 matched,
    0.51 at random, before); the match space is the child's canonical correlation directions
    with its parent's columns, which keep the dependence."""
    from synth_platform.lib.metadata import TableMetadata

    real, synthetic = _wide_pair(6000, 4), _wide_pair(6000, 5)
    synthetic = {
        "parent": synthetic["parent"].assign(id=synthetic["parent"]["id"] + 10**6),
        "child": synthetic["child"].drop(columns="parent_id"),
    }
    profiles = {
        "parent": TableMetadata("parent", "id", ("income",), (), (), columns=("id", "income")),
        "child": TableMetadata(
            "child", None, ("amount", "when"), (), ("c0", "c1"),
            columns=tuple(real["child"].columns), foreign_keys=("parent_id",),
        ),
    }  # fmt: skip
    key = "child.parent_id->parent.id"
    scores = {}
    for name, matched in (("random", None), ("matched", profiles)):
        out = rekey_children(
            group=_PLANTED, real=real, synthetic=synthetic, seed=0, profiles=matched
        )
        pairs = evaluate_cross_table_trends(
            group=_PLANTED, real=real, synthetic=out, tables=profiles
        )[key].pairs
        scores[name] = float(pairs.set_index(["column_1", "column_2"])["score"].filter(
            like="amount").mean())  # fmt: skip
    assert scores["matched"] > 0.9 and scores["random"] < 0.6, scores


def test_counts_are_placed_on_the_synthetic_parents_most_like_their_real_ones() -> None:
    """Three hubs hold 90% of the children: at equal sizes every real count is used once
    (the shape is kept exactly), and each hub's count lands on the synthetic parent nearest
    to it; with more synthetic parents the counts are resampled, never lost."""
    from synth_platform.lib.multitable import _place_counts

    rng = np.random.default_rng(3)
    real_xy = rng.uniform(0, 1, (300, 2))
    counts = np.zeros(300)
    counts[[7, 70, 170]] = [5000, 3000, 1000]
    counts[rng.choice(300, 50, replace=False)] += rng.integers(1, 20, 50)
    shuffle = rng.permutation(300)
    synthetic_xy = real_xy[shuffle] + rng.normal(0, 1e-4, (300, 2))
    placed = _place_counts(counts, real_xy, synthetic_xy, np.random.default_rng(0))
    assert sorted(placed) == sorted(counts)
    for hub in (7, 70, 170):
        assert placed[np.flatnonzero(shuffle == hub)[0]] == counts[hub]
    more = _place_counts(counts, real_xy, rng.uniform(0, 1, (900, 2)), np.random.default_rng(0))
    assert len(more) == 900 and more.sum() >= counts.sum()
    assert {5000.0, 3000.0, 1000.0} <= set(more)
    # Fewer synthetic parents than real ones, children held by 3 of 1,000: a hub still gets
    # a place (a random subset of 5 would miss all three almost always).
    hubs = np.zeros(1000)
    hubs[[1, 2, 3]] = [600, 300, 100]
    for seed in range(5):
        few = _place_counts(
            hubs, rng.uniform(0, 1, (1000, 2)), rng.uniform(0, 1, (5, 2)),
            np.random.default_rng(seed),
        )  # fmt: skip
        assert few.sum() > 0 and (few > 0).sum() <= 3


@pytest.mark.parametrize("shape", [(0, 3), (1, 2), (500, 1), (4000, 3), (4000, 6)])
def test_unique_rows_are_numpys_unique_rows(shape):
    from synth_platform.lib.multitable import _unique_rows

    rng = np.random.default_rng(shape[0] + shape[1])
    points = np.round(rng.normal(size=shape), 1)  # many ties
    if shape[0]:
        points[::7, 0] = -0.0
        points[::11, 0] = 0.0
    distinct, inverse = _unique_rows(points)
    want, want_inverse = np.unique(points, axis=0, return_inverse=True)
    assert np.array_equal(distinct, want)
    assert np.array_equal(inverse, want_inverse.reshape(-1))
    assert np.array_equal(distinct[inverse], points)


def test_datetimes_as_numbers_are_utc_nanoseconds_whatever_the_unit_or_zone():
    from synth_platform.lib.multitable import _as_float

    naive = pd.Series(pd.to_datetime(["2020-03-29 01:30:00.0", None, "1969-12-31 23:59:59.5"]))
    want = np.array([1585445400e9, np.nan, -0.5e9])
    cases = [naive, naive.astype("datetime64[us]"), naive.astype("datetime64[ms]"),
             naive.dt.tz_localize("UTC").dt.tz_convert("America/New_York"),
             naive.astype(object)]  # fmt: skip
    for values in cases:
        assert np.array_equal(_as_float(values, datetime=True), want, equal_nan=True), values


def test_rekeying_leaves_its_inputs_untouched_whatever_their_index(
    bank: dict[str, pd.DataFrame], group
) -> None:
    # The output shares the columns it does not replace with the input frames (no copy of a
    # 1M-row table); the inputs keep their keys, and an input indexed otherwise than 0..n-1
    # gives the same keys as one that is.
    profiles = _bank_profiles(bank, group)
    synthetic = _independent_synthetic(bank, 3)
    for r in group.relationships:  # stale keys, as a sampled child has, to be replaced
        synthetic[r.child] = synthetic[r.child].assign(**{r.child_column: -1})
    before = {t: frame.copy() for t, frame in synthetic.items()}
    out = rekey_children(group=group, real=bank, synthetic=synthetic, seed=2, profiles=profiles)
    for t in group.tables:
        pd.testing.assert_frame_equal(synthetic[t], before[t])
    for r in group.relationships:  # the keys changed, in the output only
        assert (synthetic[r.child][r.child_column] == -1).all()
        assert out[r.child][r.child_column].isin(out[r.parent][r.parent_column]).all()
    shifted = {t: frame.set_axis(frame.index * 7 + 3) for t, frame in before.items()}
    again = rekey_children(group=group, real=bank, synthetic=shifted, seed=2, profiles=profiles)
    for t in group.tables:
        assert isinstance(again[t].index, pd.RangeIndex) and again[t].index.start == 0
        pd.testing.assert_frame_equal(again[t], out[t])
        if set(out[t].columns) == set(bank[t].columns):
            assert list(out[t].columns) == list(bank[t].columns)


def test_profile_categories_read_as_text_exactly_as_astype_str() -> None:
    """Re-keying converts each distinct value of a non-object, non-float column once; the
    text must be what ``astype(str)`` gives value by value (else categories stop matching)."""
    from synth_platform.lib.multitable import _as_text

    columns = {
        "bool": pd.Series([True, False, True, True]),
        "nullable bool": pd.Series([True, None, False], dtype="boolean"),
        "int": pd.Series([3, 1, 3], dtype="int64", index=[7, 8, 9]),
        "nullable int": pd.Series([1, None, 3], dtype="Int64"),
        "category": pd.Series(["x", None, "y", "x"], dtype="category"),
        "string": pd.Series(["a", None, "b"], dtype="string"),
        "datetime": pd.Series(
            pd.to_datetime(["2020-01-01", None, "2021-05-05 10:00"], format="mixed")
        ),
        "aware": pd.Series(pd.to_datetime(["2020-01-01", None], utc=True)),
        "period": pd.Series(pd.period_range("2020-01", periods=2, freq="M")),
        "object": pd.Series(["a", None, 1, True, 1.0, np.nan], dtype=object),
        "float": pd.Series([0.0, -0.0, np.nan, 0.1]),
    }
    for name, values in columns.items():
        got, want = _as_text(values), values.astype(str)
        assert [str(v) for v in got] == [str(v) for v in want], name
        assert got.index.equals(values.index), name


def test_profile_coordinates_do_not_depend_on_the_chunking(monkeypatch) -> None:
    """Coordinates are computed ``_CHUNK_ROWS`` rows at a time; a row's must not depend on
    which chunk it falls in."""
    from synth_platform.lib import multitable as M
    from synth_platform.lib.metadata import TableMetadata

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=1_000),
            "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, 1_000), "D"),
            "kind": rng.choice(["a", "b", "c", None], size=1_000),
            "flag": rng.random(1_000) < 0.3,
        }
    )
    meta = TableMetadata("t", None, ("x",), ("when",), ("kind", "flag"), columns=tuple(frame))
    space = M._profile_space(meta, set(), frame, np.random.default_rng(0))
    whole = space.coordinates(frame)
    monkeypatch.setattr(M, "_CHUNK_ROWS", 97)
    assert np.array_equal(space.coordinates(frame), whole)
    assert whole.shape == (1_000, space.axes.shape[1])
