"""Reading real tables out of the (private) DuckDB warehouse, with clear errors.

A table is read as Arrow, so every column keeps its exact type (the candidate and the
published release are written with this same schema): DuckDB hands each supported type to
Arrow as the type a Parquet reader maps back to it. Types the synthesizers cannot model, or
that Parquet cannot carry, are refused before anything is read, naming the column and the
fix; so are values the synthesizers cannot model (±infinity, timestamps outside the
nanosecond range, a column without any value).
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from synth_platform.lib.errors import SourceError, UnsupportedColumnError
from synth_platform.lib.identifiers import quote
from synth_platform.lib.warehouse import Warehouse

_INTEGERS = (
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
)  # fmt: skip
_FLOATS = ("FLOAT", "DOUBLE")
_TEMPORAL = ("DATE", "TIMESTAMP", "TIMESTAMP_MS", "TIMESTAMP WITH TIME ZONE")
#: DuckDB types that round-trip: modelled, sampled and published as the same type.
SUPPORTED = (*_INTEGERS, *_FLOATS, "DECIMAL", "VARCHAR", "BOOLEAN", "ENUM", *_TEMPORAL,
             "TIMESTAMP_NS", "TIMESTAMPTZ_NS")  # fmt: skip

#: Pandas' nanosecond range, which the synthesizers (RDT) model datetimes in, with a day's
#: margin; dates and timestamps outside it are refused.
DATETIME_MIN = "1677-09-22"
DATETIME_MAX = "2262-04-10"

_BIGINT_MAX = 2**63 - 1
_EXCLUDE = "or list the column under `meta.synthetic.exclude`"
#: (type pattern, why it is refused, the fix in the dbt model)
_REFUSED: tuple[tuple[str, str, str], ...] = (
    (r"^(HUGEINT|UHUGEINT|VARINT|BIGNUM)$",
     "Parquet has no 128-bit or arbitrary-precision integer, so the published twin could not "
     "keep the type", "cast it to BIGINT when its values fit, else to DECIMAL(38,0) (modelled as "
     "a float: about 15 significant digits; subtract a common offset if the values differ only "
     "beyond them)"),
    (r"^TIMESTAMP_S$", "Parquet has no second-precision timestamp",
     "cast it to TIMESTAMP"),
    (r"^(TIME|TIME_NS|TIME WITH TIME ZONE|TIMETZ)$",
     "the synthesizers have no time-of-day model",
     "cast it to seconds since midnight (`extract(epoch from col)::integer`) or to VARCHAR"),
    (r"^INTERVAL$", "the synthesizers have no duration model",
     "cast it to a number (`extract(epoch from col)` seconds)"),
    (r"^UUID$", "a Parquet UUID is not read back as UUID by every consumer",
     "cast it to VARCHAR (declare it `pii: uuid4` or make it the primary key)"),
    (r"^(BLOB|BYTEA|BINARY|VARBINARY|BIT|BITSTRING)$", "binary values cannot be modelled",
     "derive a modelable column from it (e.g. `octet_length(col)`) and drop it"),
    (r"^(STRUCT|MAP|UNION)\b|\[|^(LIST|ARRAY)\b", "nested values cannot be modelled",
     "unnest it into plain columns in the dbt model"),
    (r"^JSON$", "JSON documents cannot be modelled",
     "extract the fields you need into plain columns (or cast it to VARCHAR)"),
)  # fmt: skip


def base_type(duck_type: str) -> str:
    """`DECIMAL(10,2)` -> `DECIMAL`, `ENUM('a', 'b')` -> `ENUM`; other types unchanged."""
    t = duck_type.upper().strip()
    if t.startswith(("DECIMAL", "NUMERIC", "ENUM")) and "(" in t:
        return "DECIMAL" if t.startswith(("DECIMAL", "NUMERIC")) else "ENUM"
    return "TIMESTAMP WITH TIME ZONE" if t == "TIMESTAMPTZ" else t


def refusal(duck_type: str) -> tuple[str, str] | None:
    """(why, fix) when a DuckDB type is not supported, else ``None``."""
    t = duck_type.upper().strip()
    if base_type(t) in SUPPORTED:
        return None
    for pattern, why, fix in _REFUSED:
        if re.search(pattern, t):
            return why, fix
    return ("the synthesizers cannot model it",
            "cast it to VARCHAR, DOUBLE, DATE or TIMESTAMP")  # fmt: skip


def _supported(duck_type: str) -> bool:
    return refusal(duck_type) is None


def _split_relation(relation: str) -> tuple[str | None, str, str]:
    """``[database.]schema.name`` -> (database or None, schema, name)."""
    parts = relation.split(".")
    if len(parts) >= 3:
        return parts[-3], parts[-2], parts[-1]
    if len(parts) == 2:
        return None, parts[0], parts[1]
    return None, "main", parts[0]


def table_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    """(column, DuckDB type) of a relation, in order; empty if it does not exist."""
    database, schema, name = _split_relation(relation)
    sql = (
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ?"
    )
    params = [schema, name]
    if database:
        sql += " and table_catalog = ?"
        params.append(database)
    return [(c, t) for c, t in con.execute(sql + " order by ordinal_position", params).fetchall()]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


def _value_problems(
    con: duckdb.DuckDBPyConnection, qualified: str, columns: list[tuple[str, str]], table: str
) -> list[str]:
    """What the synthesizers cannot model in the values of ``columns`` (each problem names its
    column and the fix), from one scan of the table; none for an empty table, which the caller
    reports."""
    checks: list[tuple[str, str, str]] = []  # (column, problem kind, SQL count)
    for c, t in columns:
        q, b = quote(c), base_type(t)
        present = f"count(*) filter (where not isnan({q}))" if b in _FLOATS else f"count({q})"
        checks.append((c, "empty", present))  # NaN is missing in pandas
        if b == "UBIGINT":
            checks.append((c, "ubigint", f"count(*) filter (where {q} > {_BIGINT_MAX})"))
        if b in _FLOATS:
            checks.append((c, "inf", f"count(*) filter (where isinf({q}))"))
        elif b in _TEMPORAL:
            low, high = (
                (f"timestamptz '{DATETIME_MIN} 00:00:00+00'", f"timestamptz '{DATETIME_MAX} 00:00:00+00'")
                if b == "TIMESTAMP WITH TIME ZONE"
                else (f"timestamp '{DATETIME_MIN}'", f"timestamp '{DATETIME_MAX}'")
            )  # fmt: skip
            checks.append(
                (c, "range", f"count(*) filter (where isinf({q}) or {q} < {low} or {q} > {high})")
            )
    if not checks:
        return []
    sql = f"select count(*), {', '.join(s for _, _, s in checks)} from {qualified}"
    try:
        rows, *counts = con.execute(sql).fetchall()[0]
    except duckdb.Error as exc:
        raise _read_error(table, qualified, exc) from None
    if rows == 0:
        return []  # the caller reports the empty table
    problems = []
    for (c, kind, _), n in zip(checks, counts, strict=True):
        if kind == "empty" and n == 0:
            problems.append(
                f"column '{c}' has no value in {rows} rows (all NULL or NaN): there is nothing "
                f"to learn; fix the model's column, {_EXCLUDE}"
            )
        elif kind == "ubigint" and n:
            problems.append(
                f"column '{c}' holds {n} UBIGINT value(s) above {_BIGINT_MAX} (BIGINT's "
                "largest), which the synthesizers and gates cannot model as integers; cast it "
                f"to DECIMAL(20,0) or DOUBLE in the dbt model, {_EXCLUDE}"
            )
        elif kind == "inf" and n:
            problems.append(
                f"column '{c}' holds {n} infinite value(s) (+/-inf), which the synthesizers "
                f"cannot model; map them to NULL in the dbt model "
                f"(`case when isinf({c}) then null else {c} end`) {_EXCLUDE}"
            )
        elif kind == "range" and n:
            problems.append(
                f"column '{c}' holds {n} value(s) before {DATETIME_MIN} or after {DATETIME_MAX} "
                f"(or +/-infinity), outside the nanosecond range the synthesizers model; map "
                f"sentinel dates to NULL in the dbt model (e.g. `nullif({c}, '9999-12-31')`) "
                f"or clip them, {_EXCLUDE}"
            )
    return problems


def _read_error(table: str, relation: str, exc: Exception) -> SourceError:
    return SourceError(
        f"table '{table}': reading {relation} failed: {_first_line(exc)}. If the model is a "
        "view over a source, check that the dbt profile attaches that source (`attach:` in "
        "profiles.yml), or materialize the model as a table."
    )


def read_source(
    *, warehouse: Warehouse | Path, relation: str, table: str, exclude: tuple[str, ...] = ()
) -> pa.Table:
    """Read a dbt model's table from the warehouse as Arrow, with its exact column types.

    Args:
        warehouse: The warehouse of the dbt profile (opened read-only with its attachments),
            or the path of a bare DuckDB file.
        relation: `[database.]schema.table` of the model.
        table: Model name, for error messages.
        exclude: Columns to leave out.

    Raises:
        SourceError: the warehouse or the table is missing or unreadable, or the table is empty.
        UnsupportedColumnError: a column has a type, or values, no synthesizer can model.
    """
    if not isinstance(warehouse, Warehouse):
        warehouse = Warehouse(path=Path(warehouse))
    with warehouse.connect(table=table) as con:
        # TIMESTAMPTZ values are instants: read (and publish) them in UTC, whatever the
        # machine's zone.
        con.execute("set TimeZone = 'UTC'")
        database, _, _ = _split_relation(relation)
        catalogs = {
            r[0] for r in con.execute("select database_name from duckdb_databases()").fetchall()
        }
        if database and database not in catalogs:
            relation = relation.split(".", 1)[1]  # the warehouse file is opened under another name
        try:
            cols = table_columns(con, relation)
        except duckdb.Error as exc:
            raise _read_error(table, relation, exc) from None
        if not cols:
            raise SourceError(
                f"table '{table}': relation {relation} is not in the warehouse "
                f"{warehouse.path}; build the dbt model first (materialize it in Dagster, or "
                f"`dbt build -s {table}`), or set `refresh_upstream: true` so that the refresh "
                "job builds it."
            )
        unknown = sorted(set(exclude) - {c for c, _ in cols})
        if unknown:
            raise SourceError(
                f"table '{table}': `meta.synthetic.exclude` names column(s) {unknown} that "
                f"{relation} does not have; fix the list (columns: {[c for c, _ in cols]})."
            )
        keep = [(c, t) for c, t in cols if c not in exclude]
        if not keep:
            raise SourceError(
                f"table '{table}': every column of {relation} is excluded; nothing is left to "
                "synthesize. Shorten `meta.synthetic.exclude`."
            )
        database, schema, name = _split_relation(relation)
        qualified = ".".join(quote(p) for p in (database, schema, name) if p)
        # Every problem at once, types and values, so that one round trip fixes them all.
        refused = [(c, t, refusal(t)) for c, t in keep]
        bad = [(c, t, why_fix) for c, t, why_fix in refused if why_fix]
        problems = []
        if bad:
            listed = "; ".join(f"{c} ({t}): {why}; fix: {fix}" for c, t, (why, fix) in bad)
            problems.append(
                f"unsupported column type(s): {listed}. Change them in the dbt model, or list "
                "them under `meta.synthetic.exclude`"
            )
        modelable = [(c, t) for c, t, why_fix in refused if why_fix is None]
        problems += _value_problems(con, qualified, modelable, table)
        if problems:
            raise UnsupportedColumnError(f"table '{table}': " + "; ".join(problems) + ".")
        select = ", ".join(quote(c) for c, _ in keep)
        try:
            data = con.sql(f"select {select} from {qualified}").to_arrow_table()
        except duckdb.Error as exc:
            raise _read_error(table, relation, exc) from None
    if data.num_rows == 0:
        raise SourceError(
            f"table '{table}': relation {relation} is empty; there is nothing to learn from. "
            "Check the dbt model's filters and its source."
        )
    # Every column may be NULL in the synthetic table (faked PII reproduces a null share).
    schema = pa.schema([f.with_nullable(True) for f in data.schema])
    return data.cast(schema)


def read_real_table(
    *, warehouse: Warehouse | Path, relation: str, table: str, exclude: tuple[str, ...] = ()
) -> pd.DataFrame:
    """:func:`read_source` as a DataFrame (as `pd.read_parquet` reads the split files back)."""
    return to_frame(read_source(warehouse=warehouse, relation=relation, table=table,
                                exclude=exclude))  # fmt: skip


def to_frame(data: pa.Table) -> pd.DataFrame:
    """An Arrow table as pandas, exactly as `pd.read_parquet` returns a file of it."""
    return data.to_pandas()
