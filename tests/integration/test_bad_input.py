"""Hostile input, one case at a time: every refresh either round-trips the column types or
fails with the project's own error naming the table, the column and the fix; either way the
release published before stays as it was and readable.

A real DuckDB warehouse file, a real MLflow (SQLite) store and real GE suites; the lifecycle
functions are called directly (as the Dagster assets call them). One good release of `good`
is published first; each case then attempts a refresh of `good` from a hostile relation or
spec (or, for the supported types, a refresh of its own `rt_*` table).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synth_platform.lib import lifecycle
from synth_platform.lib.errors import (
    SourceError,
    SpecError,
    SynthPlatformError,
    TrackingError,
    UnsupportedColumnError,
)
from synth_platform.lib.home import SynthHome
from synth_platform.lib.publish import connect, latest_version
from synth_platform.lib.specs import ModelSpec, parse_spec
from synth_platform.lib.warehouse import Attachment, Warehouse

ROWS = 60
GATES = ("fidelity", "privacy", "validity")
#: Lenient bounds: these tests are about types and errors, not about the quality of a
#: 60-row synthetic table (the gates themselves are tested elsewhere).
SPEC = {
    "seed": 3,
    "attacks": False,
    "thresholds": {
        "fidelity": 0.3, "worst_column": 0.0, "dcr_share": 1.0, "nndr": 0.0,
        "exact_copies": 1000,
    },
}  # fmt: skip


def _model(
    name: str = "good",
    relation: str | None = None,
    block: dict | None = None,
    *,
    pii: dict[str, str] | None = None,
    key: str | None = "id",
) -> ModelSpec:
    spec = parse_spec(model=name, block={**SPEC, **(block or {})})
    if pii:
        spec = spec.model_copy(update={"pii": pii})
    return ModelSpec(
        name=name,
        unique_id=f"model.test.{name}",
        relation=relation or f"main.{name}",
        spec=spec,
        columns={},
        unique_columns=frozenset({key} if key else ()),
        not_null_columns=frozenset({key} if key else ()),
    )


GOOD = _model(pii={"email": "email"})

_BASE = (
    "range::integer as id, round(100 + 15 * sin(range), 2)::double as amount, "
    "(['retail', 'premium', 'business'])[range % 3 + 1] as segment, "
    "timestamp '2021-01-01' + range * interval 37 hour as opened, "
    "'user' || range || '@bank.example' as email"
)


def _hostile(name: str, columns: str, rows: int = ROWS) -> str:
    return f"create table {name} as select {_BASE}, {columns} from range({rows})"


#: Relations of the warehouse: the good table and one hostile relation per case.
TABLES = {
    "good": f"create table good as select {_BASE} from range({ROWS})",
    "c_hugeint": _hostile("c_hugeint", "range::hugeint as big"),
    "c_uhugeint": _hostile("c_uhugeint", "range::uhugeint as big"),
    "c_timestamp_s": _hostile("c_timestamp_s", "timestamp_s '2020-01-01 10:00:00' as at_s"),
    "c_time": _hostile("c_time", "time '10:00:00' + range * interval 1 minute as at_time"),
    "c_timetz": _hostile("c_timetz", "timetz '10:00:00+02' as at_timetz"),
    "c_interval": _hostile("c_interval", "range * interval 1 day as waited"),
    "c_uuid": _hostile("c_uuid", "uuid() as token"),
    "c_blob": _hostile("c_blob", "'\\xAA'::blob as payload"),
    "c_bit": _hostile("c_bit", "'1010'::bit as flags"),
    "c_struct": _hostile("c_struct", "{'a': range} as nested"),
    "c_list": _hostile("c_list", "[range, 1] as items"),
    "c_array": _hostile("c_array", "[range, 1, 2]::integer[3] as fixed"),
    "c_map": _hostile("c_map", "map {'k': range} as mapping"),
    "c_union": _hostile("c_union", "union_value(num := range) as tagged"),
    "c_json": _hostile("c_json", "'{\"a\": 1}'::json as doc"),
    "c_far_past": _hostile("c_far_past", "timestamp '0900-01-01' + range * interval 1 day as era"),
    "c_far_future": _hostile("c_far_future", "date '9999-12-31' as valid_to"),
    "c_date_infinity": _hostile("c_date_infinity", "'infinity'::date as until"),
    "c_tz_far": _hostile("c_tz_far", "timestamptz '2500-01-01 00:00:00+00' as expires"),
    "c_huge_ubigint": _hostile(
        "c_huge_ubigint", "(18446744073709551615 - range)::ubigint as serial"
    ),
    "c_pos_inf": _hostile(
        "c_pos_inf", "case when range = 7 then 'inf'::double else range end as ratio"
    ),
    "c_neg_inf": _hostile(
        "c_neg_inf", "case when range = 7 then '-inf'::float else range end::float as score"
    ),
    "c_nan_only": _hostile("c_nan_only", "'nan'::double as nothing"),
    "c_all_null_col": _hostile("c_all_null_col", "null::varchar as note"),
    "c_all_null_table": (
        "create table c_all_null_table as select null::integer as id, null::double as amount "
        f"from range({ROWS})"
    ),
    "c_empty": f"create table c_empty as select {_BASE} from range(0)",
    "c_tiny": f"create table c_tiny as select {_BASE} from range(2)",
    "c_free_text": _hostile("c_free_text", "md5(range::varchar) || ' note' as comment", 150),
    "c_flag_pii": _hostile("c_flag_pii", "range % 2 = 0 as is_vip"),
}


@dataclass
class Env:
    root: Path
    home: SynthHome
    warehouse: Warehouse
    expectations: Path
    tracking_uri: str
    snapshot: dict[str, str] = field(default_factory=dict)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _release_files(env: Env) -> dict[str, str]:
    release = env.home.public_dir / "good" / "v000001"
    return {p.name: _digest(p) for p in sorted(release.iterdir())}


def refresh(env: Env, model: ModelSpec, *, warehouse: Warehouse | None = None,
            tracking_uri: str | None = None) -> None:  # fmt: skip
    """The whole refresh of one table: split, train, sample, the three gates, publish."""
    lifecycle.split_table(home=env.home, warehouse=warehouse or env.warehouse, model=model)
    lifecycle.train_table(home=env.home, model=model, tracking_uri=tracking_uri or env.tracking_uri)
    lifecycle.sample_table(home=env.home, model=model)
    for kind in GATES:
        lifecycle.evaluate_gate(
            home=env.home, model=model, kind=kind, expectations_dir=env.expectations,
            tracking_uri=None,
        )  # fmt: skip
    lifecycle.publish_table(home=env.home, model=model)


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    root = tmp_path_factory.mktemp("bad_input")
    source = root / "source.duckdb"
    with duckdb.connect(str(source)) as con:
        con.execute("create table accounts as select range::integer as id from range(20)")
    wh = root / "warehouse.duckdb"
    with duckdb.connect(str(wh)) as con:
        con.execute("create type mood as enum ('sad', 'ok', 'happy')")
        for sql in TABLES.values():
            con.execute(sql)
        for name, sql in ROUND_TRIP_SQL.items():
            con.execute(f"create table {name} as select {sql} from range({ROWS})")
        # A model left as a view over an attached source (dbt-duckdb `attach:`).
        con.execute(f"attach '{source}' as src (read_only)")
        con.execute("create view over_source as select * from src.accounts")
        con.execute("detach src")
    home = SynthHome(root / "home").ensure()
    e = Env(root=root, home=home, warehouse=Warehouse(path=wh),
            expectations=root / "expectations", tracking_uri=home.mlflow_tracking_uri)  # fmt: skip
    refresh(e, GOOD)
    assert latest_version(home.public_dir, "good") == "v000001"
    e.snapshot = _release_files(e)
    return e


def assert_release_intact(env: Env) -> None:
    assert latest_version(env.home.public_dir, "good") == "v000001"
    assert _release_files(env) == env.snapshot
    with connect(env.home.public_dir) as con:
        rows = con.execute("select count(*), count(distinct email) from good").fetchall()
    assert rows[0][0] > 0 and rows[0][1] > 0
    data = pd.read_parquet(env.home.public_dir / "good" / "v000001" / "data.parquet")
    assert list(data.columns) == ["id", "amount", "segment", "opened", "email"]


# ----------------------------------------------------------------------------- refused


@dataclass(frozen=True)
class Case:
    """A refresh of `good` that must fail with ``error`` and a message holding ``needles``."""

    error: type[SynthPlatformError]
    needles: tuple[str, ...]
    attempt: Callable[[Env], None]


def _from(relation: str, **kw) -> Callable[[Env], None]:
    return lambda env: refresh(env, _model(relation=f"main.{relation}", **kw))


def _spec(block: dict) -> Callable[[Env], None]:
    return lambda env: refresh(env, _model(block=block, pii={"email": "email"}))


def _typed(relation: str, column: str, duck_type: str, fix: str) -> Case:
    return Case(UnsupportedColumnError, ("'good'", column, duck_type, fix, "exclude"),
                _from(relation, pii={"email": "email"}))  # fmt: skip


def _without_attachment(env: Env) -> None:
    refresh(env, _model(relation="main.over_source", key=None))


def _missing_warehouse(env: Env) -> None:
    refresh(env, GOOD, warehouse=Warehouse(path=env.root / "no_such.duckdb"))


UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing listens


def _unreachable_mlflow(env: Env) -> None:
    lifecycle.split_table(home=env.home, warehouse=env.warehouse, model=GOOD)
    model_file = lifecycle.paths_for(env.home, "good").model
    before = model_file.stat().st_mtime_ns
    start = time.perf_counter()
    try:
        lifecycle.train_table(home=env.home, model=GOOD, tracking_uri=UNREACHABLE)
    finally:
        assert time.perf_counter() - start < 20, "must fail in seconds, not after retries"
        assert model_file.stat().st_mtime_ns == before, "nothing may be fitted"


def _distribution_of_text_column(env: Env) -> None:
    model = _model(block={"synthesizer": "gaussian_copula",
                          "parameters": {"numerical_distributions": {"segment": "beta"}}},
                   pii={"email": "email"})  # fmt: skip
    lifecycle.split_table(home=env.home, warehouse=env.warehouse, model=model)
    lifecycle.train_table(home=env.home, model=model, tracking_uri=env.tracking_uri)


REFUSED: dict[str, Case] = {
    "hugeint": _typed("c_hugeint", "big", "HUGEINT", "BIGINT"),
    "uhugeint": _typed("c_uhugeint", "big", "UHUGEINT", "DECIMAL(38,0)"),
    "timestamp_s": _typed("c_timestamp_s", "at_s", "TIMESTAMP_S", "cast it to TIMESTAMP"),
    "time": _typed("c_time", "at_time", "TIME", "extract(epoch"),
    "timetz": _typed("c_timetz", "at_timetz", "TIME WITH TIME ZONE", "VARCHAR"),
    "interval": _typed("c_interval", "waited", "INTERVAL", "extract(epoch"),
    "uuid": _typed("c_uuid", "token", "UUID", "cast it to VARCHAR"),
    "blob": _typed("c_blob", "payload", "BLOB", "octet_length"),
    "bit": _typed("c_bit", "flags", "BIT", "octet_length"),
    "struct": _typed("c_struct", "nested", "STRUCT", "unnest"),
    "list": _typed("c_list", "items", "BIGINT[]", "unnest"),
    "array": _typed("c_array", "fixed", "INTEGER[3]", "unnest"),
    "map": _typed("c_map", "mapping", "MAP", "unnest"),
    "union": _typed("c_union", "tagged", "UNION", "unnest"),
    "json": _typed("c_json", "doc", "JSON", "extract the fields"),
    "far_past_timestamp": Case(UnsupportedColumnError, ("'good'", "'era'", "1677-09-22", "nullif"),
                               _from("c_far_past", pii={"email": "email"})),
    "far_future_date": Case(UnsupportedColumnError, ("'good'", "'valid_to'", "2262", "nullif"),
                            _from("c_far_future", pii={"email": "email"})),
    "date_infinity": Case(UnsupportedColumnError, ("'good'", "'until'", "infinity", "exclude"),
                          _from("c_date_infinity", pii={"email": "email"})),
    "timestamptz_far_future": Case(UnsupportedColumnError, ("'good'", "'expires'", "2262"),
                                   _from("c_tz_far", pii={"email": "email"})),
    "ubigint_beyond_bigint": Case(UnsupportedColumnError, ("'good'", "'serial'", "DECIMAL(20,0)"),
                                  _from("c_huge_ubigint", pii={"email": "email"})),
    "positive_infinity": Case(UnsupportedColumnError, ("'good'", "'ratio'", "infinite", "isinf"),
                              _from("c_pos_inf", pii={"email": "email"})),
    "negative_infinity_float": Case(UnsupportedColumnError, ("'good'", "'score'", "infinite"),
                                    _from("c_neg_inf", pii={"email": "email"})),
    "nan_only_column": Case(UnsupportedColumnError, ("'good'", "'nothing'", "no value", "exclude"),
                            _from("c_nan_only", pii={"email": "email"})),
    "all_null_column": Case(UnsupportedColumnError, ("'good'", "'note'", "no value", "exclude"),
                            _from("c_all_null_col", pii={"email": "email"})),
    "all_null_table": Case(UnsupportedColumnError, ("'good'", "'id'", "'amount'", "no value"),
                           _from("c_all_null_table", key=None)),
    "empty_table": Case(SourceError, ("'good'", "c_empty", "is empty", "filters"),
                        _from("c_empty", pii={"email": "email"})),
    "too_few_rows": Case(SourceError, ("'good'", "2 rows", "at least 2", "holdout"),
                         _from("c_tiny", pii={"email": "email"})),
    "missing_relation": Case(SourceError, ("'good'", "main.nowhere", "dbt build -s good"),
                             _from("nowhere")),
    "missing_warehouse": Case(SourceError, ("'good'", "no_such.duckdb", "does not exist", "build"),
                              _missing_warehouse),
    "view_over_unattached_source": Case(SourceError, ("'good'", "over_source", "src", "attach"),
                                        _without_attachment),
    "free_text_not_declared": Case(UnsupportedColumnError, ("'good'", "'comment'", "pii"),
                                   _from("c_free_text", pii={"email": "email"})),
    "pii_column_missing": Case(UnsupportedColumnError, ("'good'", "ghost", "column meta"),
                               _from("good", pii={"email": "email", "ghost": "name"})),
    "boolean_pii": Case(UnsupportedColumnError, ("'good'", "'is_vip'", "VARCHAR", "exclude"),
                        _from("c_flag_pii", pii={"email": "email", "is_vip": "name"})),
    "primary_key_missing": Case(UnsupportedColumnError, ("'good'", "'nope'", "primary_key"),
                                _spec({"primary_key": "nope"})),
    "exclude_unknown_column": Case(SourceError, ("'good'", "ghost", "exclude"),
                                   _spec({"exclude": ["ghost"]})),
    "bad_holdout": Case(SpecError, ("'good'", "meta.synthetic.holdout", "0.5"),
                        _spec({"holdout": 0.9})),
    "zero_holdout": Case(SpecError, ("'good'", "meta.synthetic.holdout", "greater than 0"),
                         _spec({"holdout": 0})),
    "unknown_spec_field": Case(SpecError, ("'good'", "meta.synthetic.epochs", "not permitted"),
                               _spec({"epochs": 3})),
    "unknown_synthesizer": Case(SpecError, ("'good'", "meta.synthetic.synthesizer", "ctgan"),
                                _spec({"synthesizer": "gan9000"})),
    "negative_rows": Case(SpecError, ("'good'", "meta.synthetic.rows", "greater than 0"),
                          _spec({"rows": -1})),
    "ctgan_negative_epochs": Case(SpecError, ("'good'", "parameters.epochs", "ctgan", "-5"),
                                  _spec({"synthesizer": "ctgan", "parameters": {"epochs": -5}})),
    "tvae_negative_epochs": Case(SpecError, ("'good'", "parameters.epochs", "tvae", "-5"),
                                 _spec({"synthesizer": "tvae", "parameters": {"epochs": -5}})),
    "ctgan_fractional_epochs": Case(SpecError, ("'good'", "parameters.epochs", "integer"),
                                    _spec({"synthesizer": "ctgan", "parameters": {"epochs": 2.5}})),
    "ctgan_odd_batch": Case(SpecError, ("'good'", "parameters.batch_size", "pac"),
                            _spec({"synthesizer": "ctgan", "parameters": {"batch_size": 55}})),
    "unknown_parameter": Case(SpecError, ("'good'", "parameters.epochz", "allowed", "epochs"),
                              _spec({"synthesizer": "ctgan", "parameters": {"epochz": 3}})),
    "parameter_of_another_synthesizer": Case(
        SpecError, ("'good'", "parameters.epochs", "gaussian_copula", "allowed"),
        _spec({"synthesizer": "gaussian_copula", "parameters": {"epochs": 3}})),
    "cart_parameter_of_sdv": Case(
        SpecError, ("'good'", "default_distribution", "cart", "min_samples_leaf"),
        _spec({"parameters": {"default_distribution": "beta"}})),
    "cart_visit_order_names_pii": Case(
        SpecError, ("'good'", "parameters.visit_order", "email", "modelled"),
        _spec({"parameters": {"visit_order": ["email"]}})),
    "cart_zero_leaf": Case(SpecError, ("'good'", "min_samples_leaf", "greater than or equal"),
                           _spec({"parameters": {"min_samples_leaf": 0}})),
    "unknown_distribution": Case(SpecError, ("'good'", "default_distribution", "gaussian_kde"),
                                 _spec({"synthesizer": "gaussian_copula",
                                        "parameters": {"default_distribution": "cauchy"}})),
    "distribution_of_a_text_column": Case(
        SpecError, ("'good'", "numerical_distributions.segment", "numerical"),
        _distribution_of_text_column),
    "unknown_pii_provider": Case(SpecError, ("'good'", "unknown PII provider", "email"),
                                 _spec({"pii": {"email": "telepathy"}})),
    "unreachable_mlflow": Case(TrackingError, (UNREACHABLE, "unreachable", "nothing was fitted"),
                               _unreachable_mlflow),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_hostile_input_is_refused_clearly_and_the_release_survives(env, case):
    c = REFUSED[case]
    with pytest.raises(SynthPlatformError) as err:
        c.attempt(env)
    assert isinstance(err.value, c.error), f"{type(err.value).__name__}: {err.value}"
    message = str(err.value)
    for needle in c.needles:
        assert needle in message, f"{needle!r} not in: {message}"
    assert "Traceback" not in message
    assert_release_intact(env)


# -------------------------------------------------------------------------- round trips

#: Supported types: each round-trips, sampled and published as the source's own type.
ROUND_TRIP_SQL = {
    "rt_tinyint": "range::integer as id, (range % 100 - 50)::tinyint as v",
    "rt_smallint": "range::integer as id, (range * 300 - 9000)::smallint as v",
    "rt_integer": "range::integer as id, (range * 1000003 % 999983)::integer as v",
    "rt_bigint": "range::integer as id, (range * 10000000007)::bigint as v",
    # Near 2**63: bounds that round up past BIGINT's maximum in float64 (privacy baseline).
    "rt_bigint_extremes": (
        "range::integer as id, (9223372036854775807 - range * 1000000000000)::bigint as v"
    ),
    "rt_utinyint": "range::integer as id, (range * 4)::utinyint as v",
    "rt_usmallint": "range::integer as id, (range * 1000)::usmallint as v",
    "rt_uinteger": "range::integer as id, (range * 70000000)::uinteger as v",
    "rt_ubigint": "range::integer as id, (range * 1000000000000000)::ubigint as v",
    "rt_float": "range::integer as id, (sin(range) * 1e3)::float as v",
    "rt_double_with_nan": (
        "range::integer as id, case when range % 9 = 0 then 'nan'::double "
        "else cos(range) * 1e6 end as v"
    ),
    "rt_decimal": "range::integer as id, (range * 12.34 + 0.01)::decimal(10,2) as v",
    "rt_wide_decimal": "range::integer as id, (range * 1234.5678901)::decimal(38,10) as v",
    "rt_varchar_nulls": (
        "range::integer as id, case when range % 5 = 0 then null "
        "else (['a', 'b', 'c'])[range % 3 + 1] end as v"
    ),
    "rt_boolean": "range::integer as id, (range % 3 = 0) as v",
    "rt_enum": "range::integer as id, (['sad', 'ok', 'happy'])[range % 3 + 1]::mood as v",
    "rt_date": "range::integer as id, date '1999-12-01' + (range * 11)::integer as v",
    "rt_timestamp": "range::integer as id, timestamp '2020-02-29 12:00' + range * interval 7 hour as v",
    "rt_timestamp_ms": (
        "range::integer as id, (timestamp '2020-01-01' + range * interval 1 second)::timestamp_ms as v"
    ),
    "rt_timestamp_ns": (
        "range::integer as id, (timestamp '2020-01-01' + range * interval 1 minute)::timestamp_ns as v"
    ),
    "rt_timestamptz": (
        "range::integer as id, timestamptz '2021-03-28 00:30:00+01' + range * interval 1 hour as v"
    ),
    "rt_timestamptz_ns": (
        "range::integer as id, "
        "(timestamptz '2021-01-01 00:00:00+00' + range * interval 1 day)::timestamptz_ns as v"
    ),
    "rt_extreme_timestamps": (
        "range::integer as id, case when range % 2 = 0 then timestamp '1677-09-23' "
        "else timestamp '2262-04-09' end as v"
    ),
    "rt_single_column": "range::integer as v",
    "rt_pii_birth_date": (
        "range::integer as id, (['a', 'b'])[range % 2 + 1] as segment, "
        "date '1950-01-01' + (range * 97 % 20000)::integer as birth_date"
    ),
    "rt_pii_national_id": (
        "range::integer as id, (['a', 'b'])[range % 2 + 1] as segment, "
        "(1000 + range)::bigint as national_id"
    ),
    "rt_pii_signup_tz": (
        "range::integer as id, (['a', 'b'])[range % 2 + 1] as segment, "
        "timestamptz '2020-01-01 00:00:00+00' + range * interval 1 second as signup"
    ),
}
ROUND_TRIP_PII = {
    "rt_pii_birth_date": {"birth_date": "date_of_birth"},
    "rt_pii_national_id": {"national_id": "ssn"},
    "rt_pii_signup_tz": {"signup": "date_of_birth"},
}


def _source_schema(env: Env, table: str):
    with duckdb.connect(str(env.warehouse.path), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return con.sql(f"select * from {table}").to_arrow_table().schema


@pytest.mark.parametrize("table", list(ROUND_TRIP_SQL), ids=list(ROUND_TRIP_SQL))
def test_supported_types_round_trip_with_their_own_type(env, table):
    key = None if table == "rt_single_column" else "id"
    model = _model(table, pii=ROUND_TRIP_PII.get(table), key=key)
    source = _source_schema(env, table)
    lifecycle.split_table(home=env.home, warehouse=env.warehouse, model=model)
    lifecycle.train_table(home=env.home, model=model, tracking_uri=env.tracking_uri)
    cand = lifecycle.sample_table(home=env.home, model=model)
    sampled = pq.read_schema(cand.path)
    assert [(f.name, f.type) for f in sampled] == [(f.name, f.type) for f in source]
    frame = pd.read_parquet(cand.path)
    assert len(frame) == ROWS
    real = pd.read_parquet(lifecycle.paths_for(env.home, table).train)
    for column in ROUND_TRIP_PII.get(table, {}):  # no fake value equals a real one
        assert not set(frame[column].dropna()) & set(real[column].dropna()), column
    # Every supported type goes through every gate and publishes with its own type.
    for kind in GATES:
        lifecycle.evaluate_gate(
            home=env.home, model=model, kind=kind, expectations_dir=env.expectations,
            tracking_uri=None,
        )  # fmt: skip
    release = lifecycle.publish_table(home=env.home, model=model)
    published = pq.read_schema(release.data)
    assert [(f.name, f.type) for f in published] == [(f.name, f.type) for f in source]
    assert_release_intact(env)


def test_a_view_over_an_attached_source_reads_through_the_profile_attachments(env):
    wh = replace(env.warehouse, attach=(Attachment(path=str(env.root / "source.duckdb"),
                                                   alias="src"),))  # fmt: skip
    model = _model("over_source", key=None)
    split = lifecycle.split_table(home=env.home, warehouse=wh, model=model)
    assert split.train_rows + split.holdout_rows == 20
    assert_release_intact(env)
