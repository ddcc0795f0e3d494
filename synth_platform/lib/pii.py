"""Synthetic PII: generated, never learned from real values, never equal to one.

Text PII comes from a Faker provider. PII of any other type (a date of birth, a numeric
national id, a timestamp) is drawn uniformly, from a seeded generator, within the range of the
real column, at the column's resolution (days, the timestamp unit, integers, the decimal
scale). Either way a value equal to a real one is drawn again, and when a range holds nothing
but real values the draw steps outside it, so no fake value ever equals a real one. Nothing
depends on the current date: the same seed gives the same values on any day.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from synth_platform.lib.fake_text import VectorFaker

_MAX_RETRIES = 20
#: Birth dates drawn when nothing bounds them (a text column, or no real value): a fixed
#: window, so that the output does not depend on the day it is generated.
BIRTH_DATES = (date(1935, 1, 1), date(2007, 12, 31))
_EPOCH = np.datetime64("1970-01-01", "D")

PiiKind = Literal["text", "integer", "float", "date", "timestamp"]


@dataclass(frozen=True)
class PiiDomain:
    """What the fake values of one PII column look like, and which values they must avoid.

    ``low``/``high`` bound the draw and ``forbidden`` holds the real values, both in the
    column's numeric form: integers as such, floats (rounded to ``scale`` decimals when set),
    dates as days since 1970-01-01, timestamps as integers in ``unit`` since the epoch (UTC).
    Text columns only use ``forbidden`` (the real strings).
    """

    kind: PiiKind
    forbidden: frozenset = frozenset()
    low: float | None = None
    high: float | None = None
    scale: int | None = None
    unit: str = "us"
    tz: str | None = None
    limits: tuple[int, int] | None = None  # representable range of an integer column

    # Derived once per domain, not per sampling batch: a table of n rows is sampled in
    # n / batch_size batches, and rebuilding these from all n real values in each batch made
    # faking grow as n squared (1M real integers: ~2 s of every 50k-row batch).
    @cached_property
    def forbidden_sorted(self) -> np.ndarray:
        """``forbidden`` of a numeric or temporal domain as a sorted array."""
        integral = self.kind in ("integer", "date", "timestamp")
        return np.sort(np.fromiter(self.forbidden, dtype=np.int64 if integral else np.float64,
                                   count=len(self.forbidden)))  # fmt: skip

    @cached_property
    def forbidden_text(self) -> frozenset[str]:
        """``forbidden`` as strings (a text domain's values already are)."""
        return frozenset(map(str, self.forbidden))


def _days(values: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(values, errors="coerce", format="mixed").dropna()
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return (stamps.to_numpy().astype("datetime64[D]") - _EPOCH).astype(np.int64)


def _ticks(values: pd.Series, unit: str) -> np.ndarray:
    stamps = pd.to_datetime(values, errors="coerce", format="mixed").dropna()
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.to_numpy().astype(f"datetime64[{unit}]").astype(np.int64)


def _floats(values: pd.Series) -> np.ndarray:
    v = values.dropna()
    return np.array([float(x) for x in v], dtype=np.float64) if len(v) else np.zeros(0)


def pii_domain(real: pd.Series, arrow_type: pa.DataType | None = None) -> PiiDomain:
    """The domain of a PII column from its real values (read from the split files) and its
    Arrow type. Only bounds and the set of values to avoid are kept."""
    t = arrow_type
    values = real.dropna()
    if t is None or pa.types.is_string(t) or pa.types.is_large_string(t):
        if t is None and pd.api.types.is_datetime64_any_dtype(real):
            t = pa.timestamp("us")
        elif (
            t is None
            and pd.api.types.is_numeric_dtype(real)
            and not pd.api.types.is_bool_dtype(real)
        ):
            t = pa.float64()
        else:
            return PiiDomain(kind="text", forbidden=frozenset(values.astype(str)))
    if pa.types.is_integer(t):
        ints = _floats(values).astype(np.int64) if len(values) else np.zeros(0, np.int64)
        info = np.iinfo(t.to_pandas_dtype())
        limits = (max(int(info.min), -(2**62)), min(int(info.max), 2**62))
        return PiiDomain(
            kind="integer", forbidden=frozenset(ints.tolist()),
            low=int(ints.min()) if len(ints) else None,
            high=int(ints.max()) if len(ints) else None, limits=limits,
        )  # fmt: skip
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        scale = t.scale if pa.types.is_decimal(t) else None
        floats = _floats(values)
        if scale is not None:
            floats = np.round(floats, scale)
        return PiiDomain(
            kind="float", forbidden=frozenset(floats.tolist()), scale=scale,
            low=float(floats.min()) if len(floats) else None,
            high=float(floats.max()) if len(floats) else None,
        )  # fmt: skip
    if pa.types.is_date(t):
        days = _days(values)
        return PiiDomain(
            kind="date", forbidden=frozenset(days.tolist()),
            low=int(days.min()) if len(days) else None,
            high=int(days.max()) if len(days) else None,
        )  # fmt: skip
    if pa.types.is_timestamp(t):
        ticks = _ticks(values, t.unit)
        return PiiDomain(
            kind="timestamp", forbidden=frozenset(ticks.tolist()), unit=t.unit, tz=t.tz,
            low=int(ticks.min()) if len(ticks) else None,
            high=int(ticks.max()) if len(ticks) else None,
        )  # fmt: skip
    return PiiDomain(kind="text", forbidden=frozenset(values.astype(str)))


def _text_values(faker: VectorFaker, provider: str, n: int) -> np.ndarray:
    """``n`` values of a text PII provider (dates of birth from a fixed window instead of
    Faker's, which depends on today's date)."""
    if provider == "date_of_birth":
        low, high = ((d - date(1970, 1, 1)).days for d in BIRTH_DATES)
        days = faker.rng.integers(low, high + 1, size=n).astype("timedelta64[D]")
        return (_EPOCH + days).astype(object)
    values = faker.draw(provider, n)
    if provider == "address":
        return np.array([v.replace("\n", ", ") for v in values], dtype=object)
    return values


def _fake_text(
    provider: str, n: int, seed: int, forbidden: Collection[str], locale: str
) -> list[object]:
    faker = VectorFaker(locale, seed)
    values = _text_values(faker, provider, n)
    if forbidden:
        bad = np.flatnonzero([str(v) in forbidden for v in values])
        for _ in range(_MAX_RETRIES):
            if not len(bad):
                break
            values[bad] = _text_values(faker, provider, len(bad))
            bad = bad[[str(v) in forbidden for v in values[bad]]]  # only the redrawn can be
        for i in bad:
            # Vanishingly rare: make it unmistakably synthetic rather than loop forever.
            values[i] = f"{values[i]} (synthetic {seed}-{i})"
    return values.tolist()


def _free_values(
    start: float, step: float, forbidden: np.ndarray, count: int, limits: tuple[float, float]
) -> list[float]:
    """Up to ``count`` values ``start + k*step`` (k >= 0) that are not forbidden, within
    ``limits`` (``step`` may be negative)."""
    out: list[float] = []
    taken = set(forbidden.tolist())
    v = start
    for _ in range(count + len(taken) + 1):
        if len(out) >= count or not limits[0] <= v <= limits[1]:
            break
        if v not in taken:
            out.append(v)
        v += step
    return out


def _in_sorted(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_values)`` by binary search (np.isin sorts both again)."""
    if not len(sorted_values):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return sorted_values[at] == values


def _draw(domain: PiiDomain, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` values of a numeric or temporal domain, none of them forbidden."""
    kind = domain.kind
    integral = kind in ("integer", "date", "timestamp")
    low, high = domain.low, domain.high
    if low is None or high is None:  # no real value: a neutral range
        low, high = {
            "integer": (0, 10**6),
            "float": (0.0, 1.0),
            "date": tuple((d - date(1970, 1, 1)).days for d in BIRTH_DATES),
            "timestamp": (
                int(np.datetime64("2000-01-01", domain.unit).astype(np.int64)),
                int(np.datetime64("2020-12-31", domain.unit).astype(np.int64)),
            ),
        }[kind]
    if integral:
        limits = domain.limits or (-(2**62), 2**62)
    else:
        limits = (-np.finfo(np.float64).max, np.finfo(np.float64).max)
    step = 1.0 if integral else (10.0**-domain.scale if domain.scale is not None else None)

    def sample(k: int) -> np.ndarray:
        if integral:
            return rng.integers(int(low), int(high), size=k, endpoint=True).astype(np.int64)
        v = rng.uniform(float(low), float(high), size=k) if high > low else np.full(k, low)
        return np.round(v, domain.scale) if domain.scale is not None else v

    forbidden = domain.forbidden_sorted
    values = sample(n)
    for _ in range(_MAX_RETRIES):
        bad = _in_sorted(values, forbidden)
        if not bad.any():
            return values
        values[bad] = sample(int(bad.sum()))
    bad = np.flatnonzero(_in_sorted(values, forbidden))
    if len(bad):  # the range holds (almost) only real values: step outside it
        if step is None:
            free = [float(np.nextafter(high, np.inf)) * (1 + 1e-9 * (k + 1)) for k in range(4)]
            free = [v for v in free if v not in domain.forbidden] or [high + 1.0]
        else:
            free = _free_values(float(high) + step, step, forbidden, len(bad), limits)
            if not free:
                free = _free_values(float(low) - step, -step, forbidden, len(bad), limits)
        if not free:
            values = values.astype(np.float64)
            values[bad] = np.nan  # every representable value is real: leave it missing
        else:
            for j, i in enumerate(bad):
                values[i] = free[j % len(free)]
    return values


def _typed(domain: PiiDomain, values: np.ndarray) -> pd.Series:
    if domain.kind == "integer":
        return pd.Series(values).round().astype("Int64")
    if domain.kind == "float":
        return pd.Series(values, dtype="float64")
    if domain.kind == "date":
        return pd.Series(pd.to_datetime(_EPOCH + values.astype("timedelta64[D]")))
    stamps = pd.Series(pd.to_datetime(values.astype(f"datetime64[{domain.unit}]")))
    return stamps.dt.tz_localize("UTC").dt.tz_convert(domain.tz) if domain.tz else stamps


def fake_column(
    *,
    provider: str,
    n: int,
    seed: int,
    null_share: float = 0.0,
    forbidden: Collection[str] | PiiDomain = frozenset(),
    locale: str = "en_US",
) -> pd.Series:
    """`n` fake values for a PII column, reproducible from `seed`, none equal to a real value.

    Args:
        provider: The Faker provider of a text column (`date_of_birth` draws dates from a
            fixed window instead of Faker's, which depends on today's date).
        forbidden: The column's :class:`PiiDomain` (its type, range and real values), or, for a
            text column, just the real values. Values equal to one are drawn again.
        null_share: Share of missing values to reproduce.
    """
    domain = forbidden if isinstance(forbidden, PiiDomain) else None
    if domain is None and provider == "date_of_birth":
        domain = PiiDomain(kind="date", forbidden=frozenset(_days(pd.Series(list(forbidden)))))
    if domain is None or domain.kind == "text":
        real = domain.forbidden_text if domain is not None else frozenset(map(str, forbidden))
        values = _fake_text(provider, n, seed, real, locale)
        if domain is not None and provider == "date_of_birth":
            values = [v.isoformat() if isinstance(v, date) else v for v in values]
        out = pd.Series(values, dtype="object")
    else:
        out = _typed(domain, _draw(domain, n, np.random.default_rng([seed, 1])))
    if null_share > 0:
        rng = np.random.default_rng(seed)
        out = out.copy()  # never a view of a datetime accessor
        out[rng.random(n) < null_share] = None
    return out


# ------------------------------------------------------------------ reference-data PII scan

#: Patterns of personal data a public reference table must not hold (whole-value or embedded
#: matches in text columns). Phone numbers need separators, so that plain numeric codes pass.
PII_PATTERNS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "phone": r"(?:\+\d{1,3}[\s.-]?)?\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b",
    "ssn": r"\b\d{3}-\d{2}-\d{4}\b",
    "ipv4": r"\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b",
    "card": r"\b(?:\d[ -]?){12,18}\d\b",
}


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def scan_for_pii(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per text column, the number of values that look like personal data, by kind (e-mail,
    phone number, SSN, IPv4 address, payment card number passing the Luhn check). Only
    columns with a match are listed; values are never returned. Each distinct value is
    scanned once, so the work grows with the distinct values, not the rows."""
    found: dict[str, dict[str, int]] = {}
    for name in frame.columns:
        column = frame[name]
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        counts = column.dropna().astype(str).value_counts()
        if counts.empty:
            continue
        values = pd.Series(counts.index)
        hits: dict[str, int] = {}
        for kind, pattern in PII_PATTERNS.items():
            matched = values.str.contains(pattern, regex=True)
            if kind == "card" and matched.any():
                digits = values[matched].str.extract(f"({pattern})", expand=False)
                digits = digits.str.replace(r"\D", "", regex=True)
                matched.loc[matched] = digits.map(_luhn).to_numpy(dtype=bool)
            n = int(counts.to_numpy()[matched.to_numpy()].sum())
            if n:
                hits[kind] = n
        if hits:
            found[str(name)] = hits
    return found
