import numpy as np
import pandas as pd
import pytest

from synth_platform.lib.errors import SourceError, UnsupportedColumnError
from synth_platform.lib.extract import read_real_table
from synth_platform.lib.metadata import derive_metadata
from synth_platform.lib.specs import ModelSpec, TableSpec


def _model(**kw) -> ModelSpec:
    return ModelSpec(name="t", unique_id="model.x.t", relation="main.t", spec=TableSpec(**kw),
                     columns={}, unique_columns=frozenset({"id"}),
                     not_null_columns=frozenset({"id"}), accepted_values={"c": ("a", "b")})  # fmt: skip


def _frame(n=300):
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "id": np.arange(n), "x": rng.normal(size=n), "c": rng.choice(["a", "b"], n),
        "d": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 99, n), unit="D"),
        "flag": rng.random(n) < 0.5, "mail": [f"u{i}@x.org" for i in range(n)],
    })  # fmt: skip


def test_metadata_is_derived_from_dbt_tests_and_dtypes():
    meta, sdv = derive_metadata(data=_frame(), model=_model(pii={"mail": "email"}))
    assert meta.primary_key == "id"
    assert meta.numeric == ("x",) and meta.datetime == ("d",)
    assert set(meta.categorical) == {"c", "flag"}
    assert "mail" not in sdv["tables"]["t"]["columns"]  # PII is never learned
    assert sdv["tables"]["t"]["columns"]["id"] == {"sdtype": "id"}


def test_free_text_column_must_be_declared_rather_than_memorised():
    with pytest.raises(UnsupportedColumnError, match="table 't': column 'mail'.*pii"):
        derive_metadata(data=_frame(), model=_model())


def test_few_whole_numbers_are_categorical_as_sdv_detects_them():
    rng = np.random.default_rng(1)
    frame = _frame().assign(
        children=rng.integers(0, 6, 300),  # 6 whole values: a small count
        rating=rng.integers(1, 6, 300).astype(float),  # whole floats, 5 values
        visits=rng.integers(0, 40, 300),  # 40 values: a number
        share=rng.choice([0.25, 0.5, 0.75], 300),  # few values, not whole: a number
    )
    meta, _ = derive_metadata(data=frame, model=_model(pii={"mail": "email"}))
    assert {"children", "rating"} <= set(meta.categorical)
    assert {"visits", "share", "x"} <= set(meta.numeric)
    # Too few rows to tell (SDV's rule: at most rows / 10 levels): numbers stay numbers.
    small, _ = derive_metadata(data=frame.head(30), model=_model(pii={"mail": "email"}))
    assert "children" in small.numeric


def test_sdtype_override_wins():
    meta, _ = derive_metadata(data=_frame(), model=_model(pii={"mail": "email"},
                                                          sdtypes={"x": "categorical"}))  # fmt: skip
    assert "x" in meta.categorical


def test_missing_empty_and_unsupported_tables_get_clear_errors(tmp_path):
    import duckdb

    wh = tmp_path / "wh.duckdb"
    with pytest.raises(SourceError, match="does not exist"):
        read_real_table(warehouse=wh, relation="main.t", table="t")
    with duckdb.connect(str(wh)) as con:
        con.execute("create table empty_t (a int)")
        con.execute("create table blobby (a int, b blob, c int[])")
        con.execute("insert into blobby values (1, 'x', [1])")
    with pytest.raises(SourceError, match="not in the warehouse"):
        read_real_table(warehouse=wh, relation="main.t", table="t")
    with pytest.raises(SourceError, match="'empty_t'.*empty"):
        read_real_table(warehouse=wh, relation="main.empty_t", table="empty_t")
    with pytest.raises(UnsupportedColumnError, match=r"'blobby'.*b \(BLOB\).*c \(INTEGER\[\]\)"):
        read_real_table(warehouse=wh, relation="main.blobby", table="blobby")
    assert list(read_real_table(warehouse=wh, relation="main.blobby", table="blobby",
                                exclude=("b", "c")).columns) == ["a"]  # fmt: skip


def test_unsupported_types_and_values_are_reported_together(tmp_path):
    # One round trip: a table with a refused type and a column without any value names both.
    import duckdb

    wh = tmp_path / "wh.duckdb"
    with duckdb.connect(str(wh)) as con:
        con.execute("create table t as select i as a, null::varchar as note, [i] as l, "
                    "'infinity'::double as r from range(3) r(i)")  # fmt: skip
    with pytest.raises(UnsupportedColumnError) as caught:
        read_real_table(warehouse=wh, relation="main.t", table="t")
    message = str(caught.value)
    assert message.startswith("table 't': unsupported column type(s): l (BIGINT[])"), message
    assert "column 'note' has no value in 3 rows" in message, message
    assert "column 'r' holds 3 infinite value(s)" in message, message


def test_value_kind_of_object_columns_needs_every_value_of_one_kind():
    import datetime as dt
    from decimal import Decimal

    from synth_platform.lib.metadata import value_kind

    def kind(values):
        return value_kind(pd.Series(values, dtype=object))

    assert kind([True, None, False]) == "boolean"
    assert kind([Decimal("1.5"), None, Decimal("2")]) == "numerical"
    assert kind([dt.date(2020, 1, 1), None, dt.datetime(2020, 1, 2), pd.Timestamp(0)]) == "datetime"
    assert kind(["a", None]) == kind([None, None]) == kind([]) == "text"
    # A first value of one kind is not enough: the rest are read.
    assert kind([Decimal("1"), Decimal("2"), "x"]) == "text"
    assert kind([True, 1]) == kind([dt.date(2020, 1, 1), "2020-01-02"]) == "text"
    assert kind([None, "x", Decimal("1")]) == "text"
