"""Validation and quoting of SQL identifiers coming from user configuration."""

from __future__ import annotations

import re

from synth_platform.lib.errors import IdentifierError

_SAFE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def safe_identifier(name: str, *, what: str = "identifier", table: str | None = None) -> str:
    """Return `name` if it is a plain identifier (letters, digits, underscore), else raise.

    Table names end up in file paths and SQL, so only plain identifiers are accepted; this
    rejects quotes, dots, slashes, semicolons and whitespace rather than trying to escape them.
    """
    if not isinstance(name, str) or not _SAFE.match(name):
        where = f" of table '{table}'" if table else ""
        raise IdentifierError(
            f"{what}{where} {name!r} is not a safe identifier: use letters, digits and "
            "underscores only, starting with a letter or underscore (max 63 characters)."
        )
    return name


def quote(name: str) -> str:
    """Quote an identifier for DuckDB, doubling embedded quotes (for column names from data)."""
    return '"' + name.replace('"', '""') + '"'
