"""Great Expectations 1.x suites for the three blocking gates.

One JSON file per table and kind (`<table>.<kind>.json`): hand-written in the user's suites
folder (used as written), else generated for each refresh into the home's private zone from the
thresholds and a profile of the current real rows (:func:`ensure_suites`):

- `fidelity`, `privacy` and `diagnostic` suites hold standard expectations over a one-row
  metric table computed by the project's vectorised engine (`lib.evaluation`); each gated
  metric's bound is its threshold, and a metric that is only reported (no threshold yet) is
  listed with `expect_column_values_to_not_be_null` (reported, it never decides) so that
  adding a bound in the file or in the dbt meta turns it into a gate. The diagnostic suite (boundary and
  category adherence, key uniqueness, table structure) requires 1.0 and belongs to the
  validity gate.
- `validity` suites hold expectations over the candidate synthetic rows themselves: ordered
  schema, column types, key uniqueness, ranges and allowed categories profiled from the real
  (training) rows. They quote real minima, maxima and categories, so they belong to the
  private zone like the dbt project itself.

Thresholds set explicitly in the dbt meta block always take effect: they override the suite
file's bound on the metric, or add one where the file has none (`load_suite`); otherwise the
suite file is the source of truth. The verdict on the metric suites is
`synth_platform.lib.verdict.decide`, which never lets a metric without a number (NaN, None)
pass a bound or drop one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from synth_platform.lib import locks
from synth_platform.lib.errors import ProjectError
from synth_platform.lib.metadata import TableMetadata
from synth_platform.lib.plan import GATE_KINDS as GATE_KINDS  # defined with the plan, used here
from synth_platform.lib.plan import GateKind
from synth_platform.lib.specs import Thresholds

SuiteKind = Literal["fidelity", "privacy", "validity", "diagnostic"]
SUITE_KINDS: tuple[SuiteKind, ...] = ("fidelity", "privacy", "validity", "diagnostic")
#: The suites each gate validates.
GATE_SUITES: dict[GateKind, tuple[SuiteKind, ...]] = {
    "fidelity": ("fidelity",),
    "privacy": ("privacy",),
    "validity": ("validity", "diagnostic"),
}

#: Metric column -> (threshold field in `Thresholds`, or None for a suite-only bound; bound).
#: `min` = the metric must be at least the threshold, `max` = at most.
FIDELITY_METRICS: dict[str, tuple[str | None, str]] = {
    "overall": ("fidelity", "min"),
    "column_shapes": ("column_shapes", "min"),
    "column_pair_trends": ("column_pair_trends", "min"),
    "worst_column_shape": ("worst_column", "min"),
    "utility": ("utility", "min"),
}
PRIVACY_METRICS: dict[str, tuple[str | None, str]] = {
    "exact_copies_train": ("exact_copies", "max"),
    "exact_copies_holdout": ("exact_copies_holdout", "max"),
    "dcr_share": ("dcr_share", "max"),
    "near_copies_excess": ("near_copies", "max"),
    "nndr_median": ("nndr", "min"),
    "baseline_protection": ("baseline_protection", "min"),
    "pii_leaks": ("pii_leaks", "max"),
    "singling_out_risk": ("singling_out_risk", "max"),
    "linkability_risk": ("linkability_risk", "max"),
    "inference_risk": ("inference_risk", "max"),
}
DIAGNOSTIC_METRICS: dict[str, tuple[str | None, str]] = {
    "boundary_adherence": (None, "min"),
    "category_adherence": (None, "min"),
    "key_uniqueness": (None, "min"),
    "table_structure": (None, "min"),
}
#: Suite-only bounds (no `Thresholds` field): the diagnostic must be perfect to publish.
_FIXED_BOUNDS = {"diagnostic": 1.0}


def suite_path(directory: Path, table: str, kind: SuiteKind) -> Path:
    return Path(directory) / f"{table}.{kind}.json"


BETWEEN = "expect_column_values_to_be_between"
PRESENT = "expect_column_values_to_not_be_null"


def _threshold_expectation(
    metric: str, field: str | None, bound: str, value: float | None
) -> dict[str, Any]:
    meta = {"threshold": field, "bound": bound}
    if value is None:  # reported only, until someone sets a bound
        return {"type": PRESENT, "kwargs": {"column": metric}, "meta": meta}
    kwargs: dict[str, Any] = {"column": metric}
    kwargs["min_value" if bound == "min" else "max_value"] = value
    return {"type": BETWEEN, "kwargs": kwargs, "meta": meta}


def _metric_suite(
    table: str, kind: SuiteKind, metrics: dict[str, tuple[str | None, str]], thresholds: Thresholds
) -> dict:
    exps = []
    for metric, (field, bound) in metrics.items():
        value = getattr(thresholds, field) if field else _FIXED_BOUNDS[kind]
        exps.append(_threshold_expectation(metric, field, bound, value))
    return {
        "name": f"{table}.{kind}",
        "expectations": exps,
        "meta": {"table": table, "kind": kind, "generated_by": "synth_platform"},
    }


def _iso(v: Any) -> str:
    return pd.Timestamp(v).isoformat()


def _datetime_bounds(column: pd.Series) -> tuple[str, str] | None:
    """ISO bounds GE can compare with the column's values: dates for a DATE column (Python
    ``date`` objects: GE cannot compare them with a datetime), timestamps (with their zone,
    if any) otherwise; ``None`` without a value."""
    values = column.dropna()
    if values.empty:
        return None
    # Only an object column can hold `date`s: a datetime64 one is not mapped value by value
    # (boxing 1M timestamps took 1.8-2.7 s and set off the garbage collector 4-6 times).
    if values.dtype == object and all(
        isinstance(v, date) and not isinstance(v, datetime) for v in values
    ):
        return min(values).isoformat(), max(values).isoformat()
    stamps = pd.to_datetime(values)
    return _iso(stamps.min()), _iso(stamps.max())


def _ge_type(dtype: Any) -> str:
    """The type name GE's `expect_column_values_to_be_of_type` observes for ``dtype``: the
    scalar type of a pandas extension dtype (`CategoricalDtypeType` for an ENUM,
    `Timestamp` for a zone-aware timestamp), the dtype's name otherwise."""
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return dtype.type.__name__
    return str(dtype)


def _dates_as_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    """DATE columns arrive from Parquet as `datetime.date` objects, which GE cannot compare with
    ISO bounds: give them the datetime dtype, on the real and the synthetic side alike."""
    out = frame
    for c in frame.columns:
        if frame[c].dtype != object:
            continue
        present = frame[c].dropna()
        if len(present) and all(
            isinstance(v, date) and not isinstance(v, datetime) for v in present.iloc[:100]
        ):
            out = out.copy() if out is frame else out
            out[c] = pd.to_datetime(frame[c])
    return out


_TYPE_EXPECTATIONS = {
    "expect_column_values_to_be_of_type": "type_",
    "expect_column_values_to_be_in_type_list": "type_list",
}


def _nanosecond_timestamps(
    data: pd.DataFrame, suite: Mapping[str, Any]
) -> tuple[pd.DataFrame, Mapping[str, Any], dict[str, dict[str, str]]]:
    """GE checks a naive timestamp column against its bounds at once when it is in
    nanoseconds, value by value in any other unit: 3.1-3.4 s per million rows against 0.07 s
    (2 cores), and DuckDB's TIMESTAMP arrives as ``datetime64[us]``. Such a column goes to GE in
    nanoseconds when every value fits them (years 1677-2262), with its type expectations naming
    the nanosecond type where they named the column's own; a column whose type expectation
    names another type is left as it is, so that the check fails as it should.

    Returns the frame, the suite, and per converted column ``{"datetime64[ns]": own type}``
    to report the column's own type back."""
    types: dict[str, list[Any]] = {}
    for e in suite.get("expectations", []):
        key = _TYPE_EXPECTATIONS.get(e.get("type", ""))
        if key is not None and "column" in e.get("kwargs", {}):
            types.setdefault(e["kwargs"]["column"], []).append(e["kwargs"].get(key))
    out, renamed = data, {}
    for c in data.columns:
        dtype = data[c].dtype
        if not (pd.api.types.is_datetime64_dtype(dtype) and str(dtype) != "datetime64[ns]"):
            continue  # ns already, zone-aware (GE compares those at once in any unit), or else
        own = str(dtype)
        if any(t != own and not (isinstance(t, list) and own in t) for t in types.get(c, [])):
            continue
        try:
            converted = data[c].astype("datetime64[ns]")
        except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
            continue  # a value outside the nanosecond range: GE compares it value by value
        out = out.copy() if out is data else out
        out[c] = converted
        renamed[c] = {"datetime64[ns]": own}
    if not renamed:
        return data, suite, renamed

    def retyped(e: Mapping[str, Any]) -> Mapping[str, Any]:
        key = _TYPE_EXPECTATIONS.get(e.get("type", ""))
        column = e.get("kwargs", {}).get("column")
        if key is None or column not in renamed:
            return e
        value, own = e["kwargs"][key], renamed[column]["datetime64[ns]"]
        new = ["datetime64[ns]" if t == own else t for t in value] if (
            isinstance(value, list)) else "datetime64[ns]"  # fmt: skip
        return {**e, "kwargs": {**e["kwargs"], key: new}}

    return out, {**suite, "expectations": [retyped(e) for e in suite["expectations"]]}, renamed


def validity_suite(
    *, table: str, real: pd.DataFrame, metadata: TableMetadata, not_null: frozenset[str]
) -> dict:
    """Profile the real rows into schema, key, range and category expectations."""
    real = _dates_as_timestamps(real)
    exps: list[dict[str, Any]] = [
        {
            "type": "expect_table_columns_to_match_ordered_list",
            "kwargs": {"column_list": list(metadata.columns)},
        }
    ]
    for c in metadata.columns:
        exps.append(
            {
                "type": "expect_column_values_to_be_of_type",
                "kwargs": {"column": c, "type_": _ge_type(real[c].dtype)},
            }
        )
    pk = metadata.primary_key
    if pk:
        exps.append({"type": "expect_column_values_to_be_unique", "kwargs": {"column": pk}})
    for c in sorted(set(not_null) | ({pk} if pk else set())):
        if c in real.columns and c not in metadata.pii:
            exps.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": c}})
    for c in metadata.numeric:
        s = real[c].dropna()
        if len(s):
            exps.append(
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {
                        "column": c,
                        "min_value": float(s.min()),
                        "max_value": float(s.max()),
                    },
                }
            )
    for c in metadata.datetime:
        bounds = _datetime_bounds(real[c])
        if bounds:
            exps.append(
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": c, "min_value": bounds[0], "max_value": bounds[1]},
                }
            )
    for c in metadata.categorical:
        values = sorted(real[c].dropna().unique().tolist(), key=str)
        exps.append(
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": c, "value_set": values},
            }
        )
    return {
        "name": f"{table}.validity",
        "expectations": exps,
        "meta": {"table": table, "kind": "validity", "generated_by": "synth_platform"},
    }


def ensure_suites(
    *,
    directory: Path | None,
    generated: Path,
    table: str,
    real: pd.DataFrame,
    metadata: TableMetadata,
    thresholds: Thresholds,
    not_null: frozenset[str] = frozenset(),
) -> dict[SuiteKind, Path]:
    """The table's suite of each kind: the hand-written one, or one generated for this refresh.

    A suite the user wrote (``<directory>/<table>.<kind>.json``) is used exactly as written.
    Every other suite is (re)generated under ``generated`` (the home's private zone: validity
    suites quote real values) from the thresholds and a profile of the current real rows, and
    rewritten whenever that profile changes, so its ranges and categories follow a growing
    source instead of freezing the first run's. To take over a generated suite, copy it into
    ``directory`` and edit it there.
    """
    builders = {
        "fidelity": lambda: _metric_suite(table, "fidelity", FIDELITY_METRICS, thresholds),
        "privacy": lambda: _metric_suite(table, "privacy", PRIVACY_METRICS, thresholds),
        "validity": lambda: validity_suite(
            table=table, real=real, metadata=metadata, not_null=not_null
        ),
        "diagnostic": lambda: _metric_suite(table, "diagnostic", DIAGNOSTIC_METRICS, thresholds),
    }
    paths: dict[SuiteKind, Path] = {}
    for kind in SUITE_KINDS:
        own = suite_path(Path(directory), table, kind) if directory is not None else None
        if own is not None and own.exists() and not _frozen_profile(own, kind):
            paths[kind] = own
            continue
        paths[kind] = write_generated(
            suite_path(Path(generated), table, kind),
            json.dumps(builders[kind](), indent=2, default=str) + "\n",
        )
    return paths


def _frozen_profile(path: Path, kind: str) -> bool:
    """A validity suite in the user's folder still marked ``generated_by: synth_platform``: a
    profile synth_platform < 0.3 wrote there on the first run, which froze that run's ranges
    and categories. It is re-derived like any generated suite; remove the mark to keep it."""
    if kind != "validity":
        return False
    try:
        meta = json.loads(path.read_text()).get("meta") or {}
    except (OSError, ValueError):
        return False  # the gate's loader reports an unreadable suite with its path
    return meta.get("generated_by") == "synth_platform"


def write_generated(path: Path, text: str) -> Path:
    """Write a generated suite unless the file already holds exactly ``text`` (atomically:
    concurrent gates may write the same suite at once)."""
    if path.exists() and path.read_text() == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = locks.temp_path(path)
    with locks.removed_on_error(tmp):
        tmp.write_text(text)
        tmp.replace(path)
    return path


#: Metric suites by kind: metric column -> (threshold field, bound).
SUITE_METRICS: dict[str, dict[str, tuple[str | None, str]]] = {
    "fidelity": FIDELITY_METRICS,
    "privacy": PRIVACY_METRICS,
    "diagnostic": DIAGNOSTIC_METRICS,
}


def _suite_kind(suite: Mapping[str, Any], path: Path) -> str | None:
    kind = (suite.get("meta") or {}).get("kind")
    if kind:
        return str(kind)
    parts = Path(path).name.split(".")  # <table>.<kind>.json
    return parts[-2] if len(parts) >= 3 else None


def load_suite(
    path: Path,
    *,
    thresholds: Thresholds | None = None,
    metrics: Mapping[str, tuple[str | None, str]] | None = None,
) -> dict:
    """Read a suite; every threshold set explicitly in the dbt meta takes effect.

    For each metric of the suite's kind (``metrics``, by default :data:`SUITE_METRICS` of the
    suite's ``meta.kind`` or file name) whose threshold the dbt meta sets, the expectation on
    that metric becomes the bound ``expect_column_values_to_be_between`` with the meta's value:
    a reported-only expectation (``expect_column_values_to_not_be_null``) is turned into it, an
    existing bound is overridden, and a suite file written before the metric existed (or
    edited without it) gets the expectation added. A meta threshold set to ``null`` leaves the
    suite's bound as it is (remove a bound in the suite file).

    Raises:
        ProjectError: The suite's expectation on a metric whose threshold the meta sets is of
            another type, so the threshold could not take effect (the message names both).
    """
    suite = json.loads(Path(path).read_text())
    if thresholds is None:
        return suite
    if metrics is None:
        metrics = SUITE_METRICS.get(_suite_kind(suite, path) or "", {})
    explicit = {f for f in thresholds.model_fields_set if getattr(thresholds, f) is not None}
    exps: list[dict[str, Any]] = suite.setdefault("expectations", [])
    for metric, (field, bound) in metrics.items():
        if field not in explicit:
            continue
        value = getattr(thresholds, field)
        on_metric = [e for e in exps if (e.get("kwargs") or {}).get("column") == metric]
        if not on_metric:
            exps.append(_threshold_expectation(metric, field, bound, value))
        for exp in on_metric:
            if exp.get("type") not in (BETWEEN, PRESENT):
                raise ProjectError(
                    f"suite {Path(path)}: the dbt meta sets threshold '{field}' for metric "
                    f"'{metric}', but the suite's expectation on it is {exp.get('type')!r}; "
                    f"make it {BETWEEN} (or delete the suite file to regenerate it)."
                )
            kwargs: dict[str, Any] = {"column": metric}
            kwargs["min_value" if bound == "min" else "max_value"] = value
            exp["type"], exp["kwargs"] = BETWEEN, kwargs
            exp["meta"] = {**(exp.get("meta") or {}), "threshold": field, "bound": bound}
    return suite


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict, flattened for metadata and reports."""

    type: str
    column: str | None
    success: bool
    observed: Any
    bound: dict[str, Any]
    unexpected_count: int | None


@dataclass(frozen=True)
class SuiteOutcome:
    """A validated suite: overall verdict, per-expectation outcomes, raw GE result JSON."""

    suite: str
    success: bool
    outcomes: list[ExpectationOutcome]
    result_json: dict[str, Any]

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


def _raised(info: Any) -> str | None:
    """The exception message of a GE result, if evaluating it raised. GE 1.x reports it at
    the top level or per metric (``{MetricConfigurationID: {"raised_exception": ...}}``)."""
    if not isinstance(info, Mapping):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


_context = None


def _gx_context():
    """One ephemeral GE context per process (cheap, holds no state we rely on)."""
    global _context
    if _context is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        _context = gx.get_context(mode="ephemeral")
        _context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return _context


def validate(*, suite: Mapping[str, Any], data: pd.DataFrame) -> SuiteOutcome:
    """Validate a DataFrame against a suite dict with GE's pandas engine."""
    import great_expectations as gx

    ctx = _gx_context()
    name = "synth_platform"
    try:
        bd = ctx.data_sources.get(name).get_asset("frame").get_batch_definition("whole")
    except (KeyError, ValueError, LookupError):
        bd = (
            ctx.data_sources.add_pandas(name)
            .add_dataframe_asset("frame")
            .add_batch_definition_whole_dataframe("whole")
        )
    data = _dates_as_timestamps(data)
    data, suite, renamed = _nanosecond_timestamps(data, suite)
    gx_suite = gx.ExpectationSuite(**{k: v for k, v in suite.items() if k != "id"})
    result = bd.get_batch(batch_parameters={"dataframe": data}).validate(
        gx_suite, result_format="SUMMARY"
    )
    outcomes = []
    for r in result.results:
        cfg = r.expectation_config
        kw = {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}
        res = r.result or {}
        error = _raised(r.exception_info)
        if error is not None:  # the expectation could not be evaluated: it failed
            observed: Any = f"error: {error}"
        elif "observed_value" in res:
            observed = res["observed_value"]
        elif cfg.type in (BETWEEN, PRESENT) and len(data) == 1 and kw["column"] in data:
            observed = data[kw["column"]].iloc[0]
        else:
            observed = None
        if isinstance(observed, str) and kw.get("column") in renamed:
            observed = renamed[kw["column"]].get(observed, observed)  # the column's own type
        outcomes.append(
            ExpectationOutcome(
                type=cfg.type,
                column=kw.get("column"),
                success=bool(r.success),
                observed=observed.item() if hasattr(observed, "item") else observed,
                bound={k: v for k, v in kw.items() if k in ("min_value", "max_value")},
                unexpected_count=res.get("unexpected_count"),
            )
        )
    return SuiteOutcome(
        suite=suite.get("name", ""),
        success=bool(result.success),
        outcomes=outcomes,
        result_json=result.to_json_dict(),
    )
