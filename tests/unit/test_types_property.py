"""Property: any small table of any column types and values (NULLs, extremes, ±inf, NaN, far
dates, unsupported types) either goes through split -> train -> sample -> gates -> publish with
the source's own column types, or fails with one of synth_platform's own errors, never with a
library traceback."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth_platform.lib import lifecycle
from synth_platform.lib.errors import SynthPlatformError
from synth_platform.lib.home import SynthHome
from synth_platform.lib.specs import ModelSpec, parse_spec
from synth_platform.lib.warehouse import Warehouse

pytestmark = pytest.mark.filterwarnings("ignore")

_UTC = dt.UTC
_INT_RANGES = {
    "TINYINT": (-(2**7), 2**7 - 1), "SMALLINT": (-(2**15), 2**15 - 1),
    "INTEGER": (-(2**31), 2**31 - 1), "BIGINT": (-(2**63), 2**63 - 1),
    "UTINYINT": (0, 2**8 - 1), "USMALLINT": (0, 2**16 - 1), "UINTEGER": (0, 2**32 - 1),
    "UBIGINT": (0, 2**64 - 1), "HUGEINT": (-(2**127), 2**127 - 1),
}  # fmt: skip


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ints(duck_type: str) -> st.SearchStrategy[str]:
    lo, hi = _INT_RANGES[duck_type]
    # Mostly everyday values, sometimes the type's extremes.
    usual = st.integers(max(lo, -1000), min(hi, 1000))
    return st.one_of(usual, usual, usual, st.integers(lo, hi)).map(str)


def _floats(duck_type: str) -> st.SearchStrategy[str]:
    width = 32 if duck_type == "FLOAT" else 64
    finite = st.floats(-1e6, 1e6, width=width)
    wild = st.floats(width=width, allow_nan=True, allow_infinity=True)
    return st.one_of(finite, finite, finite, finite, wild).map(
        lambda v: f"{_q(repr(v))}::{duck_type}"
    )


def _decimal_text(units: int, scale: int) -> str:
    """``units`` / 10**scale written exactly (`Decimal` arithmetic would round to 28 digits)."""
    digits = str(abs(units)).rjust(scale + 1, "0")
    sign = "-" if units < 0 else ""
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}" if scale else f"{sign}{digits}"


def _decimals(precision: int, scale: int) -> st.SearchStrategy[str]:
    units = st.integers(-(10**precision - 1), 10**precision - 1)
    return units.map(lambda u: f"'{_decimal_text(u, scale)}'::DECIMAL({precision},{scale})")


def _dates(far: bool) -> st.SearchStrategy[dt.date]:
    usual = st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31))
    return st.one_of(usual, usual, usual, usual, st.dates()) if far else usual


def _stamps(far: bool) -> st.SearchStrategy[dt.datetime]:
    usual = st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2030, 12, 31))
    wide = st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31))
    return st.one_of(usual, usual, usual, usual, wide) if far else usual


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=6)

#: DuckDB type -> strategy of SQL literals (NULL added by the caller).
TYPES: dict[str, st.SearchStrategy[str]] = {
    **{t: _ints(t) for t in _INT_RANGES},
    "FLOAT": _floats("FLOAT"),
    "DOUBLE": _floats("DOUBLE"),
    "DECIMAL(9,2)": _decimals(9, 2),
    "DECIMAL(38,10)": _decimals(38, 10),
    "VARCHAR": st.one_of(st.sampled_from(["a", "b", "c", ""]), _TEXT).map(_q),
    "BOOLEAN": st.booleans().map(str),
    "ENUM": st.sampled_from(["sad", "ok", "happy"]).map(lambda v: f"{_q(v)}::mood"),
    "DATE": _dates(True).map(lambda d: f"DATE '{d.isoformat()}'"),
    "TIMESTAMP": _stamps(True).map(lambda t: f"TIMESTAMP '{t.isoformat(sep=' ')}'"),
    "TIMESTAMP_MS": _stamps(False).map(lambda t: f"TIMESTAMP_MS '{t.isoformat(sep=' ')}'"),
    "TIMESTAMP_NS": _stamps(False).map(lambda t: f"TIMESTAMP_NS '{t.isoformat(sep=' ')}'"),
    "TIMESTAMPTZ": _stamps(True).map(
        lambda t: f"TIMESTAMPTZ '{t.replace(tzinfo=_UTC).isoformat(sep=' ')}'"
    ),
    # Refused types: the property is that they are refused cleanly.
    "TIME": st.times().map(lambda t: f"TIME '{t.isoformat()}'"),
    "UUID": st.uuids().map(lambda u: f"'{u}'::UUID"),
    "BLOB": st.binary(max_size=4).map(
        lambda b: "'" + "".join(f"\\x{x:02x}" for x in b) + "'::BLOB"
    ),
    "INTEGER[]": st.lists(st.integers(-5, 5), max_size=3).map(lambda v: f"{v}::INTEGER[]"),
}
SUPPORTED = [t for t in TYPES if t not in ("TIME", "UUID", "BLOB", "INTEGER[]", "HUGEINT")]


@st.composite
def tables(draw) -> tuple[list[str], list[list[str]], dict[str, str]]:
    """(column types, rows of SQL literals, PII columns -> provider) of a small table."""
    n_cols = draw(st.integers(1, 4))
    # Mostly supported types and tables big enough to split; sometimes anything.
    supported = st.sampled_from(SUPPORTED)
    pool = st.one_of(supported, supported, supported, st.sampled_from(list(TYPES)))
    types = [draw(pool) for _ in range(n_cols)]
    enough = st.integers(20, 40)
    n_rows = draw(st.one_of(enough, enough, enough, st.integers(0, 12)))
    null_share = draw(st.sampled_from([0.0, 0.0, 0.0, 0.2, 0.9, 1.0]))
    cols = []
    for t in types:
        cell = st.one_of(st.just("NULL"), TYPES[t]) if null_share else TYPES[t]
        if 0 < null_share < 1:
            cell = st.tuples(st.floats(0, 1), TYPES[t]).map(
                lambda p, s=null_share: "NULL" if p[0] < s else p[1]
            )
        elif null_share == 1.0:
            cell = st.just("NULL")
        cols.append(draw(st.lists(cell, min_size=n_rows, max_size=n_rows)))
    rows = [[c[i] for c in cols] for i in range(n_rows)]
    pii = {}
    if draw(st.booleans()):
        j = draw(st.integers(0, n_cols - 1))
        provider = {"VARCHAR": "name", "DATE": "date_of_birth"}.get(types[j], "ssn")
        pii[f"c{j}"] = provider
    return types, rows, pii


def _model(pii: dict[str, str]) -> ModelSpec:
    spec = parse_spec(
        model="prop",
        block={"seed": 1, "attacks": False, "pii": pii, "thresholds": {
            "fidelity": 0.0, "worst_column": 0.0, "dcr_share": 1.0, "nndr": 0.0,
            "exact_copies": 10**6}},
    )  # fmt: skip
    return ModelSpec(name="prop", unique_id="model.p.prop", relation="main.prop", spec=spec,
                     columns={})  # fmt: skip


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


#: More (and random) examples on demand: SYNTH_PROPERTY_EXAMPLES=200 pytest ...
_EXAMPLES = int(os.environ.get("SYNTH_PROPERTY_EXAMPLES", "14"))


@settings(
    max_examples=_EXAMPLES,
    deadline=None,
    derandomize="SYNTH_PROPERTY_EXAMPLES" not in os.environ,  # reproducible by default
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],  # fmt: skip
)
@given(table=tables())
def test_any_table_publishes_with_its_types_or_fails_with_a_domain_error(table, tracking_uri):
    types, rows, pii = table
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wh = root / "wh.duckdb"
        with duckdb.connect(str(wh)) as con:
            con.execute("create type mood as enum ('sad', 'ok', 'happy')")
            columns = ", ".join(f"c{i} {'mood' if t == 'ENUM' else t}" for i, t in enumerate(types))
            con.execute(f"create table prop ({columns})")
            for row in rows:
                con.execute(f"insert into prop values ({', '.join(row)})")
            con.execute("set TimeZone = 'UTC'")
            source = con.sql("select * from prop").to_arrow_table().schema
        home = SynthHome(root / "home").ensure()
        try:
            model = _model(pii)
            lifecycle.split_table(home=home, warehouse=Warehouse(path=wh), model=model)
            lifecycle.train_table(home=home, model=model, tracking_uri=tracking_uri)
            cand = lifecycle.sample_table(home=home, model=model)
            sampled = pq.read_schema(cand.path)
            assert [(f.name, f.type) for f in sampled] == [(f.name, f.type) for f in source]
            for kind in ("fidelity", "privacy", "validity"):
                lifecycle.evaluate_gate(home=home, model=model, kind=kind,
                                        expectations_dir=root / "exp", tracking_uri=None)  # fmt: skip
            release = lifecycle.publish_table(home=home, model=model)
            published = pq.read_schema(release.data)
            assert [(f.name, f.type) for f in published] == [(f.name, f.type) for f in source]
        except SynthPlatformError as exc:
            message = str(exc)
            assert "prop" in message, message  # every domain error names the table
            if os.environ.get("SYNTH_PROPERTY_LOG"):
                with open(os.environ["SYNTH_PROPERTY_LOG"], "a") as fh:
                    fh.write(f"{types} {type(exc).__name__}: {message[:160]}\n")
        else:
            if os.environ.get("SYNTH_PROPERTY_LOG"):
                with open(os.environ["SYNTH_PROPERTY_LOG"], "a") as fh:
                    fh.write(f"{types} published\n")
