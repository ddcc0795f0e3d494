"""Fitting SDV single-table synthesizers and sampling them reproducibly, in batches."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth_platform.lib.errors import TrainingError
from synth_platform.lib.metadata import TableMetadata
from synth_platform.lib.pii import fake_column
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


def seed_everything(seed: int) -> None:
    """Seed every RNG the SDV models draw from (Python, NumPy, torch)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    import torch

    torch.manual_seed(seed)


@dataclass(frozen=True)
class FitResult:
    synthesizer: Any
    fit_seconds: float
    rows: int
    columns: int


def fit_synthesizer(
    *, train: pd.DataFrame, metadata: TableMetadata, sdv_metadata: dict, spec: TableSpec
) -> FitResult:
    """Fit the spec's SDV synthesizer on the training rows, without PII columns.

    Raises:
        TrainingError: SDV rejected the data or the parameters (message names the table).
    """
    from sdv.metadata import Metadata

    data = train[list(metadata.modelled)].copy()
    for c in metadata.datetime:
        # RDT reads datetimes as nanoseconds; microsecond columns (DuckDB's default) would
        # come back shifted to 1970, so normalise the unit before fitting.
        data[c] = pd.to_datetime(data[c]).astype("datetime64[ns]")
    seed_everything(spec.seed)
    try:
        synth = _sdv_class(spec.synthesizer)(
            Metadata.load_from_dict(sdv_metadata), **spec.parameters
        )
        start = time.perf_counter()
        synth.fit({metadata.table: data})
        elapsed = time.perf_counter() - start
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
    forbidden: Mapping[str, Collection[str]],
) -> pd.DataFrame:
    """Add the PII columns as fresh Faker values, in the table's column order."""
    out = batch.copy()
    for i, (col, provider) in enumerate(sorted(metadata.pii.items())):
        out[col] = fake_column(
            provider=provider,
            n=len(batch),
            seed=seed * 1_000_003 + batch_index * 101 + i,
            null_share=null_shares.get(col, 0.0),
            forbidden=forbidden.get(col, frozenset()),
        ).to_numpy()
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
    forbidden: Mapping[str, Collection[str]],
) -> int:
    """Sample `rows` rows in batches straight into a Parquet file; returns rows written.

    Memory is bounded by one batch; the file appears atomically (temp file, then rename).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    written = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        gen = sample_batches(
            synthesizer=synthesizer, table=metadata.table, rows=rows, seed=seed,
            batch_size=batch_size,
        )  # fmt: skip
        for i, batch in enumerate(gen()):
            full = add_pii(
                batch, metadata=metadata, seed=seed, batch_index=i,
                null_shares=null_shares, forbidden=forbidden,
            )  # fmt: skip
            writer.write_table(to_arrow(full, schema))
            written += len(full)
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
    forbidden: Mapping[str, Collection[str]],
) -> int:
    """Write already sampled rows (a multi-table synthesizer's) like :func:`write_candidate`:
    PII columns added as fresh Faker values, the real table's schema, atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    full = add_pii(
        frame.reset_index(drop=True), metadata=metadata, seed=seed, batch_index=0,
        null_shares=null_shares, forbidden=forbidden,
    )  # fmt: skip
    pq.write_table(to_arrow(full, schema), tmp)
    tmp.replace(path)
    return len(full)


def to_arrow(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Convert a batch to the real table's Arrow schema (so every batch matches)."""
    arrays = []
    for f in schema:
        col = df[f.name]
        if pa.types.is_integer(f.type) and pd.api.types.is_float_dtype(col):
            col = col.round().astype("Int64")
        arrays.append(pa.array(col, from_pandas=True).cast(f.type, safe=False))
    return pa.Table.from_arrays(arrays, schema=schema)
