"""Fitting single-table synthesizers (sequential CART or SDV's) and sampling them reproducibly,
in batches."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth_platform.lib.errors import TrainingError
from synth_platform.lib.locks import removed_on_error, temp_path
from synth_platform.lib.metadata import TableMetadata
from synth_platform.lib.pii import PiiDomain, fake_column
from synth_platform.lib.progress import Meter, Progress, report
from synth_platform.lib.specs import TableSpec


class Synthesizer(Protocol):
    """What the lifecycle needs of a fitted synthesizer (SDV's single-table API)."""

    def sample(self, num_rows: int) -> dict[str, pd.DataFrame]: ...

    def save(self, filepath: str) -> None: ...


def _sdv_class(name: str) -> type:
    from sdv.single_table import (
        CopulaGANSynthesizer,
        CTGANSynthesizer,
        GaussianCopulaSynthesizer,
        TVAESynthesizer,
    )

    return {
        "gaussian_copula": GaussianCopulaSynthesizer,
        "ctgan": CTGANSynthesizer,
        "tvae": TVAESynthesizer,
        "copulagan": CopulaGANSynthesizer,
    }[name]


def seed_everything(seed: int, *, torch: bool = True) -> None:
    """Seed every RNG the SDV models draw from (Python, NumPy and, unless ``torch=False``,
    torch: importing it costs ~300 MiB, which the CART synthesizer does not need)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if torch:
        import torch as _torch

        _torch.manual_seed(seed)


@dataclass(frozen=True)
class FitResult:
    synthesizer: Any
    fit_seconds: float
    rows: int
    columns: int


def model_column(s: pd.Series) -> pd.Series:
    """One column as the SDV synthesizers take it (:func:`to_arrow` converts back).

    RDT reads datetimes as nanoseconds: other units would come back shifted to 1970, so every
    datetime (DATE objects, TIMESTAMPTZ in UTC) becomes naive ``datetime64[ns]``; DECIMAL
    (`Decimal` objects) becomes float; ENUM (pandas category) becomes plain objects.
    """
    from synth_platform.lib.metadata import value_kind

    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.astype(object).where(s.notna(), None)
    kind = value_kind(s)
    if kind == "datetime":
        if not pd.api.types.is_datetime64_any_dtype(s):
            s = pd.to_datetime(s)
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        return s.astype("datetime64[ns]")
    if kind == "numerical" and pd.api.types.is_object_dtype(s):
        return s.astype("float64")  # Decimal objects (None: NaN), in C: 0.14 s per 800k by map
    return s


def model_frame(data: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``data`` as :func:`model_column` gives them."""
    return pd.DataFrame({c: model_column(data[c]) for c in data.columns}, index=data.index)


#: Above this many training rows, SDV's `gaussian_kde` distribution is refused: scipy's KDE
#: evaluates every training point for each value it transforms or inverts, so sampling grows
#: with rows squared. Measured (SDV 2.0, two KDE columns, as many rows sampled as fitted):
#: 500 rows 0.5 s, 1,000 rows 1.7 s, 2,000 rows 5.4 s, 4,000 rows 25.5 s; extrapolated, 50k
#: rows take over an hour per pair of columns, and fitting 53,643 rows built a 23 GB matrix.
KDE_MAX_ROWS = 2_000


def check_scalable(*, table: str, spec: TableSpec, rows: int) -> None:
    """Refuse settings whose cost grows with rows squared on a table too large for them.

    Raises:
        TrainingError: naming the table, the setting, the size and what to use instead.
    """
    params = spec.parameters
    dists = [params.get("default_distribution")]
    dists += list((params.get("numerical_distributions") or {}).values())
    copula = spec.synthesizer in ("gaussian_copula", "copulagan")
    if copula and "gaussian_kde" in dists and rows > KDE_MAX_ROWS:
        raise TrainingError(
            f"table '{table}': `gaussian_kde` is refused above {KDE_MAX_ROWS:,} training "
            f"rows ({rows:,} here): its fit and sampling grow with rows squared and would "
            "run for hours. Use the default `synthesizer: cart` (non-parametric, linear "
            "in rows), or a parametric `default_distribution` such as `beta` or `truncnorm`."
        )


def _sdtypes(sdv_metadata: dict, table: str) -> tuple[dict[str, str], str | None]:
    info = sdv_metadata["tables"][table]
    return {c: v["sdtype"] for c, v in info["columns"].items()}, info.get("primary_key")


def fit_synthesizer(
    *,
    train: pd.DataFrame,
    metadata: TableMetadata,
    sdv_metadata: dict,
    spec: TableSpec,
    progress: Progress | None = None,
) -> FitResult:
    """Fit the spec's synthesizer on the training rows, without PII columns: the sequential
    CART synthesizer (:mod:`synth_platform.lib.cart`, the default) or an SDV one.
    ``progress`` gets CART's per-column lines, or a line before and after an SDV fit.

    Raises:
        TrainingError: the setting does not scale to the table (:func:`check_scalable`), or
            the synthesizer rejected the data or the parameters (message names the table).
    """
    check_scalable(table=metadata.table, spec=spec, rows=len(train))
    data = model_frame(train[list(metadata.modelled)])
    seed_everything(spec.seed, torch=spec.synthesizer != "cart")
    try:
        if spec.synthesizer == "cart":
            from synth_platform.lib.cart import CartSynthesizer

            sdtypes, key = _sdtypes(sdv_metadata, metadata.table)
            synth: Any = CartSynthesizer(
                sdtypes, table=metadata.table, primary_key=key, seed=spec.seed,
                **spec.parameters,
            )  # fmt: skip
        else:
            from sdv.metadata import Metadata

            synth = _sdv_class(spec.synthesizer)(
                Metadata.load_from_dict(sdv_metadata), **spec.parameters
            )
        start = time.perf_counter()
        if spec.synthesizer == "cart":
            synth.fit({metadata.table: data}, progress=progress)
        else:
            report(progress, f"fit {metadata.table}: {spec.synthesizer} on {len(data):,} rows")
            synth.fit({metadata.table: data})
        elapsed = time.perf_counter() - start
        report(progress, f"fit {metadata.table}: done in {elapsed:.1f} s")
    except Exception as exc:  # SDV raises many types; re-raise with the table named
        raise TrainingError(
            f"table '{metadata.table}': {spec.synthesizer} could not be fitted: {exc}. "
            "Check `meta.synthetic.parameters` and the column types (`sdtypes` overrides)."
        ) from exc
    return FitResult(synthesizer=synth, fit_seconds=elapsed, rows=len(data), columns=data.shape[1])


def sample_batches(
    *,
    synthesizer: Any,
    table: str,
    rows: int,
    seed: int,
    batch_size: int,
) -> Callable[[], Any]:
    """Generator factory of synthetic batches; same model and seed give the same rows."""

    def batches():
        # SDV keeps sampling state; resetting it and fixing the random state makes the
        # output a pure function of (model, seed).
        synthesizer.reset_sampling()
        synthesizer._set_random_state(seed)  # SDV has no public seed argument on sample()
        done = 0
        while done < rows:
            n = min(batch_size, rows - done)
            yield synthesizer.sample(num_rows=n)[table]
            done += n

    return batches


def add_pii(
    batch: pd.DataFrame,
    *,
    metadata: TableMetadata,
    seed: int,
    batch_index: int,
    null_shares: Mapping[str, float],
    forbidden: Mapping[str, Collection[str] | PiiDomain],
) -> pd.DataFrame:
    """Add the PII columns as fresh fake values (none equal to a real one: ``forbidden`` holds
    each column's :class:`PiiDomain`), in the table's column order."""
    out = batch.copy()
    for i, (col, provider) in enumerate(sorted(metadata.pii.items())):
        out[col] = fake_column(
            provider=provider,
            n=len(batch),
            seed=seed * 1_000_003 + batch_index * 101 + i,
            null_share=null_shares.get(col, 0.0),
            forbidden=forbidden.get(col, frozenset()),
        ).set_axis(out.index)
    return out[list(metadata.columns)]


def write_candidate(
    *,
    synthesizer: Any,
    metadata: TableMetadata,
    schema: pa.Schema,
    rows: int,
    seed: int,
    batch_size: int,
    path: Path,
    null_shares: Mapping[str, float],
    forbidden: Mapping[str, Collection[str] | PiiDomain],
    progress: Progress | None = None,
    keys: Mapping[str, np.ndarray] | None = None,
) -> int:
    """Sample `rows` rows in batches straight into a Parquet file; returns rows written.

    Memory is bounded by one batch; the file appears atomically (temp file, then rename).
    ``progress`` gets rows written, percent and rate every few seconds. ``keys`` (column ->
    `rows` values, e.g. :mod:`~synth_platform.lib.keys` draws) replace the sampled values of
    those columns, in row order.
    """
    meter = Meter(progress, stage=f"sample {metadata.table}", total=rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)  # unique per writer; removed if sampling fails
    written = 0
    with removed_on_error(tmp), pq.ParquetWriter(tmp, schema) as writer:
        gen = sample_batches(
            synthesizer=synthesizer, table=metadata.table, rows=rows, seed=seed,
            batch_size=batch_size,
        )  # fmt: skip
        for i, batch in enumerate(gen()):
            full = add_pii(
                batch, metadata=metadata, seed=seed, batch_index=i,
                null_shares=null_shares, forbidden=forbidden,
            )  # fmt: skip
            for column, values in (keys or {}).items():
                full[column] = values[written : written + len(full)]
            writer.write_table(to_arrow(full, schema))
            written += len(full)
            meter.set(written)
    tmp.replace(path)
    return written


def write_frame(
    *,
    frame: pd.DataFrame,
    metadata: TableMetadata,
    schema: pa.Schema,
    seed: int,
    path: Path,
    null_shares: Mapping[str, float],
    forbidden: Mapping[str, Collection[str] | PiiDomain],
) -> int:
    """Write already sampled rows (a multi-table synthesizer's) like :func:`write_candidate`:
    PII columns added as fresh Faker values, the real table's schema, atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    full = add_pii(
        frame.reset_index(drop=True), metadata=metadata, seed=seed, batch_index=0,
        null_shares=null_shares, forbidden=forbidden,
    )  # fmt: skip
    with removed_on_error(tmp):
        pq.write_table(to_arrow(full, schema), tmp)
        tmp.replace(path)
    return len(full)


def to_arrow(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Convert a batch to the real table's Arrow schema (so every batch matches, and the
    published Parquet has the source's column types)."""
    arrays = [to_arrow_array(df[f.name], f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _largest_float_at_most(value: int) -> float:
    f = float(value)
    return f if int(f) <= value else float(np.nextafter(f, -np.inf))


def _as_float(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_object_dtype(col):
        col = pd.to_numeric(col.map(lambda v: float(v) if isinstance(v, Decimal) else v),
                            errors="coerce")  # fmt: skip
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _as_datetime(col: pd.Series, tz: str | None) -> pd.Series:
    """Datetimes (naive ones are UTC) in zone ``tz``, or naive UTC when ``tz`` is None."""
    if not pd.api.types.is_datetime64_any_dtype(col):
        col = pd.to_datetime(col, errors="coerce", format="mixed")
    aware = isinstance(col.dtype, pd.DatetimeTZDtype)
    if tz is None:
        return col.dt.tz_convert("UTC").dt.tz_localize(None) if aware else col
    return (col if aware else col.dt.tz_localize("UTC")).dt.tz_convert(tz)


def to_arrow_array(col: pd.Series, t: pa.DataType) -> pa.Array:
    """One sampled column as Arrow type ``t``: integers rounded and kept in the type's range,
    decimals rounded to their scale, datetimes back to DATE / their unit and zone."""
    col = col.reset_index(drop=True)
    if pa.types.is_integer(t):
        if pd.api.types.is_integer_dtype(col) and not pd.api.types.is_extension_array_dtype(col):
            try:  # exact (large keys), when in range
                return pa.array(col.to_numpy()).cast(t)
            except (pa.ArrowInvalid, OverflowError):
                pass
        info = np.iinfo(t.to_pandas_dtype())
        values = np.round(_as_float(col))
        missing = np.isnan(values)
        values = np.clip(np.where(missing, 0, values), float(info.min),
                         _largest_float_at_most(int(info.max)))  # fmt: skip
        return pa.array(values.astype(t.to_pandas_dtype()), type=t, mask=missing)
    if pa.types.is_floating(t):
        return pa.array(_as_float(col), from_pandas=True).cast(t)
    if pa.types.is_decimal(t):
        values = np.round(_as_float(col), t.scale)
        limit = float(Decimal(10) ** (t.precision - t.scale) - Decimal(10) ** -t.scale)
        while Decimal(limit) >= Decimal(10) ** (t.precision - t.scale):  # float rounded up
            limit = float(np.nextafter(limit, 0))
        values = np.clip(values, -limit, limit)
        return pa.array(values, from_pandas=True).cast(t, safe=False)
    if pa.types.is_date(t):
        days = _as_datetime(col, None).dt.floor("D")
        return pa.array(days, from_pandas=True).cast(t, safe=False)
    if pa.types.is_timestamp(t):
        stamps = _as_datetime(col, t.tz)
        return pa.array(stamps, from_pandas=True).cast(t, safe=False)
    if pa.types.is_boolean(t):
        values = col.astype(object).where(col.notna(), None)
        return pa.array([None if v is None else bool(v) for v in values], type=t)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        values = col.astype(object).where(col.notna(), None)
        strings = pa.array([None if v is None else str(v) for v in values], type=pa.string())
        if pa.types.is_dictionary(t):
            return strings.dictionary_encode().cast(t)
        return strings.cast(t)
    return pa.array(col, from_pandas=True).cast(t, safe=False)
