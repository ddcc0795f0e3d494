"""Reading real tables out of the (private) DuckDB warehouse, with clear errors."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from synth_platform.lib.errors import SourceError, UnsupportedColumnError
from synth_platform.lib.identifiers import quote
from synth_platform.lib.warehouse import Warehouse

#: DuckDB type prefixes the synthesizers can model (after reading into pandas).
_SUPPORTED = (
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP",
    "ENUM",
)  # fmt: skip


def _supported(duck_type: str) -> bool:
    t = duck_type.upper()
    if "[" in t or t.startswith(("STRUCT", "MAP", "UNION")):
        return False
    base = t.split("(")[0].strip()
    return base in _SUPPORTED or base.startswith("TIMESTAMP")


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


def read_real_table(
    *, warehouse: Warehouse | Path, relation: str, table: str, exclude: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Read a dbt model's table from the warehouse as a DataFrame.

    Args:
        warehouse: The warehouse of the dbt profile (opened read-only with its attachments),
            or the path of a bare DuckDB file.
        relation: `[database.]schema.table` of the model.
        table: Model name, for error messages.
        exclude: Columns to leave out.

    Raises:
        SourceError: the warehouse or the table is missing, or the table is empty.
        UnsupportedColumnError: a column has a type no synthesizer can model.
    """
    if not isinstance(warehouse, Warehouse):
        warehouse = Warehouse(path=Path(warehouse))
    with warehouse.connect(table=table) as con:
        database, _, _ = _split_relation(relation)
        catalogs = {
            r[0] for r in con.execute("select database_name from duckdb_databases()").fetchall()
        }
        if database and database not in catalogs:
            relation = relation.split(".", 1)[1]  # the warehouse file is opened under another name
        cols = table_columns(con, relation)
        if not cols:
            raise SourceError(
                f"table '{table}': relation {relation} is not in the warehouse "
                f"{warehouse.path}; build the dbt model (dbt build -s {table}) before "
                "synthesizing it."
            )
        keep = [(c, t) for c, t in cols if c not in exclude]
        bad = [(c, t) for c, t in keep if not _supported(t)]
        if bad:
            listed = ", ".join(f"{c} ({t})" for c, t in bad)
            raise UnsupportedColumnError(
                f"table '{table}': unsupported column type(s): {listed}. Cast them in the dbt "
                "model (e.g. to VARCHAR or DOUBLE) or list them under "
                "`meta.synthetic.exclude`."
            )
        database, schema, name = _split_relation(relation)
        qualified = ".".join(quote(p) for p in (database, schema, name) if p)
        select = ", ".join(
            # Decimals and unsigned/huge integers become DOUBLE/BIGINT so pandas gets numbers.
            f"cast({quote(c)} as double) as {quote(c)}"
            if t.upper().startswith(("DECIMAL", "HUGEINT", "UBIGINT"))
            else quote(c)
            for c, t in keep
        )
        try:
            df = con.execute(f"select {select} from {qualified}").df()
        except duckdb.Error as exc:
            raise SourceError(
                f"table '{table}': reading {relation} failed: {str(exc).splitlines()[0]}. If the "
                "model is a view over a source, check that the dbt profile attaches that "
                "source, or materialize the model as a table."
            ) from None
    if df.empty:
        raise SourceError(
            f"table '{table}': relation {relation} is empty; there is nothing to learn from. "
            "Check the dbt model's filters and its source."
        )
    return df
