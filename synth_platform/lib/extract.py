"""Reading real tables out of the (private) DuckDB warehouse, with clear errors."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from synth_platform.lib.errors import SourceError, UnsupportedColumnError
from synth_platform.lib.identifiers import quote

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


def _split_relation(relation: str) -> tuple[str, str]:
    schema, _, name = relation.rpartition(".")
    return (schema or "main"), name


def table_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    """(column, DuckDB type) of a relation, in order; empty if it does not exist."""
    schema, name = _split_relation(relation)
    return [
        (c, t)
        for c, t in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, name],
        ).fetchall()
    ]


def read_real_table(
    *, warehouse: Path, relation: str, table: str, exclude: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Read a dbt model's table from the warehouse as a DataFrame.

    Args:
        warehouse: Path of the DuckDB warehouse file (opened read-only).
        relation: `schema.table` of the model.
        table: Model name, for error messages.
        exclude: Columns to leave out.

    Raises:
        SourceError: the warehouse or the table is missing, or the table is empty.
        UnsupportedColumnError: a column has a type no synthesizer can model.
    """
    if not Path(warehouse).exists():
        raise SourceError(
            f"table '{table}': warehouse {warehouse} does not exist; run the dbt models first "
            "(materialize the dbt assets, or `make demo`)."
        )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cols = table_columns(con, relation)
        if not cols:
            raise SourceError(
                f"table '{table}': relation {relation} is not in the warehouse {warehouse}; "
                "build the dbt model (dbt build -s " + table + ") before synthesizing it."
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
        schema, name = relation.rpartition(".")[0] or "main", relation.rpartition(".")[2]
        select = ", ".join(
            # Decimals and unsigned/huge integers become DOUBLE/BIGINT so pandas gets numbers.
            f"cast({quote(c)} as double) as {quote(c)}"
            if t.upper().startswith(("DECIMAL", "HUGEINT", "UBIGINT"))
            else quote(c)
            for c, t in keep
        )
        df = con.execute(f"select {select} from {quote(schema)}.{quote(name)}").df()
    if df.empty:
        raise SourceError(
            f"table '{table}': relation {relation} is empty; there is nothing to learn from. "
            "Check the dbt model's filters and its source."
        )
    return df
