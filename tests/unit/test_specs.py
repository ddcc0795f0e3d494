import pytest

from synth_platform.lib.errors import IdentifierError, SpecError
from synth_platform.lib.specs import (
    SYNTHESIZER_PARAMETERS,
    TableSpec,
    parse_spec,
    specs_from_manifest,
)


def _manifest(
    meta: dict,
    *,
    name: str = "customers",
    columns=("customer_id", "email"),
    unique_pii: bool = False,
) -> dict:
    uid = f"model.synth_platform.{name}"
    nodes = {
        uid: {
            "resource_type": "model",
            "name": name,
            "schema": "main",
            "alias": name,
            "config": {"meta": meta},
            "columns": {
                c: {"name": c, "config": {"meta": {"pii": "email"} if c == "email" else {}}}
                for c in columns
            },
        }
    }
    keyed = ["customer_id"] + (["email"] if unique_pii else [])
    for i, (test, col) in enumerate((t, c) for c in keyed for t in ("unique", "not_null")):
        nodes[f"test.x.{i}"] = {
            "resource_type": "test",
            "test_metadata": {"name": test, "kwargs": {"column_name": col}},
            "column_name": col,
            "attached_node": uid,
            "depends_on": {"nodes": [uid]},
        }
    return {"nodes": nodes}


def test_defaults_give_sequential_cart_with_same_row_count():
    spec = parse_spec(model="m", block={})
    assert spec.synthesizer == "cart"
    assert spec.sample_rows(123) == 123
    assert parse_spec(model="m", block={"scale": 2}).sample_rows(10) == 20
    assert parse_spec(model="m", block={"rows": 7}).sample_rows(10) == 7


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"synthesizer": "gan9000"}, "synthesizer"),
        ({"holdout": 0.9}, "holdout"),
        ({"thresholds": {"dcr_share": 0.4}}, "thresholds.dcr_share"),
        ({"thresholds": {"fidelty": 0.4}}, "thresholds.fidelty"),
        ({"rowz": 10}, "rowz"),
    ],
)
def test_bad_meta_block_fails_with_a_message_naming_model_and_field(block, field):
    with pytest.raises(SpecError) as err:
        parse_spec(model="customers", block=block)
    assert "dbt model 'customers'" in str(err.value)
    assert f"meta.synthetic.{field}" in str(err.value)


def test_unknown_synthesizer_parameter_is_rejected_with_the_allowed_list():
    with pytest.raises(SpecError, match="unknown parameter.*epochz"):
        parse_spec(model="t", block={"synthesizer": "ctgan", "parameters": {"epochz": 3}})
    assert parse_spec(model="t", block={"synthesizer": "ctgan", "parameters": {"epochs": 3}})


def test_rows_and_scale_together_are_rejected():
    with pytest.raises(SpecError, match="either `rows` or `scale`"):
        parse_spec(model="t", block={"rows": 1, "scale": 1})


@pytest.mark.parametrize("name", ["gaussian_copula", "ctgan", "tvae", "copulagan"])
def test_allowed_parameters_match_the_installed_sdv_signatures(name):
    import inspect

    from synth_platform.lib.synthesis import _sdv_class

    params = set(inspect.signature(_sdv_class(name).__init__).parameters) - {"self", "metadata"}
    assert params == set(SYNTHESIZER_PARAMETERS[name])


def test_manifest_gives_key_from_dbt_tests_and_pii_from_column_meta():
    (spec,) = specs_from_manifest(_manifest({"synthetic": {"seed": 3}}))
    assert spec.name == "customers"
    assert spec.primary_key == "customer_id"
    assert spec.pii == {"email": "email"}
    assert spec.spec.seed == 3
    assert spec.relation == "main.customers"


def test_a_unique_pii_column_does_not_compete_with_the_key():
    (spec,) = specs_from_manifest(_manifest({"synthetic": {}}, unique_pii=True))
    assert spec.unique_columns == {"customer_id", "email"}
    assert spec.primary_key == "customer_id"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"thresholds": {"utility": 0.8}}, "needs a `target`"),
        ({"target": "email", "pii": {"email": "email"}}, "PII or excluded"),
        ({"attacks": False, "thresholds": {"inference_risk": 0.2}}, "attacks: true"),
    ],
)
def test_evaluation_settings_that_cannot_apply_are_rejected(block, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(model="customers", block=block)


def test_a_target_must_be_a_column_of_the_model():
    with pytest.raises(SpecError, match="target.*'churn'"):
        specs_from_manifest(_manifest({"synthetic": {"target": "churn"}}))


def test_models_without_synthetic_meta_are_not_opted_in():
    assert specs_from_manifest(_manifest({"owner": "x"})) == []


def test_spec_naming_an_unknown_column_is_rejected():
    with pytest.raises(SpecError, match="primary_key.*'nope'"):
        specs_from_manifest(_manifest({"synthetic": {"primary_key": "nope"}}))


def test_hostile_model_name_is_rejected():
    with pytest.raises(IdentifierError):
        specs_from_manifest(_manifest({"synthetic": {}}, name="x; drop table y"))


def test_thresholds_default_to_blocking_values():
    t = TableSpec().thresholds
    assert t.exact_copies == 0 and t.pii_leaks == 0 and 0.5 < t.dcr_share <= 1


def test_meta_relationships_override_the_dbt_tests():
    spec = parse_spec(
        model="accounts",
        block={"relationships": [{"column": "customer_id", "parent": "customers"}]},
    )
    assert [(r.column, r.parent, r.parent_column) for r in spec.relationships] == [
        ("customer_id", "customers", None)
    ]
    (model,) = specs_from_manifest(
        _manifest({"synthetic": {"relationships": [{"column": "customer_id", "parent": "x"}]}})
    )
    assert model.foreign_keys == (("customer_id", "x", None),)
    (plain,) = specs_from_manifest(_manifest({"synthetic": {}}))
    assert plain.foreign_keys == ()  # no dbt `relationships` test, no override


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"relationships": [{"column": "email", "parent": "x"}], "pii": {"email": "email"}},
         "PII or excluded"),
        ({"relationships": [{"column": "a", "parent": "x", "typo": 1}]}, "relationships.0.typo"),
        ({"multi_table": "gan"}, "multi_table"),
        ({"thresholds": {"cardinality": 1.5}}, "thresholds.cardinality"),
    ],
)  # fmt: skip
def test_bad_group_settings_are_rejected(block, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(model="accounts", block=block)


def test_a_relationship_column_must_be_a_column_of_the_model():
    meta = {"synthetic": {"relationships": [{"column": "owner", "parent": "x"}]}}
    with pytest.raises(SpecError, match=r"relationships\.0\.column.*'owner'"):
        specs_from_manifest(_manifest(meta))
