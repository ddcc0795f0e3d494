"""Great Expectations 1.x suites for the three blocking gates.

One JSON file per table and kind under `expectations/` (`<table>.<kind>.json`), generated from a
profile of the real data when missing and editable by hand:

- `fidelity`, `privacy` and `diagnostic` suites hold standard expectations over a one-row
  metric table computed by the project's vectorised engine (`lib.evaluation`); each gated
  metric's bound is its threshold, and a metric that is only reported (no threshold yet) is
  expected to be present (`expect_column_values_to_not_be_null`) so that adding a bound in
  the file or in the dbt meta turns it into a gate. The diagnostic suite (boundary and
  category adherence, key uniqueness, table structure) requires 1.0 and belongs to the
  validity gate.
- `validity` suites hold expectations over the candidate synthetic rows themselves: ordered
  schema, column types, key uniqueness, ranges and allowed categories profiled from the real
  (training) rows. They quote real minima, maxima and categories, so they belong to the
  private zone like the dbt project itself.

Thresholds set explicitly in the dbt meta block win over the suite file's values; otherwise the
suite file is the source of truth.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from synth_platform.lib.metadata import TableMetadata
from synth_platform.lib.specs import Thresholds

GateKind = Literal["fidelity", "privacy", "validity"]
GATE_KINDS: tuple[GateKind, ...] = ("fidelity", "privacy", "validity")
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


def validity_suite(
    *, table: str, real: pd.DataFrame, metadata: TableMetadata, not_null: frozenset[str]
) -> dict:
    """Profile the real rows into schema, key, range and category expectations."""
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
                "kwargs": {"column": c, "type_": str(real[c].dtype)},
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
        s = pd.to_datetime(real[c]).dropna()
        if len(s):
            exps.append(
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": c, "min_value": _iso(s.min()), "max_value": _iso(s.max())},
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
    directory: Path,
    table: str,
    real: pd.DataFrame,
    metadata: TableMetadata,
    thresholds: Thresholds,
    not_null: frozenset[str] = frozenset(),
) -> dict[SuiteKind, Path]:
    """Write each missing suite from a profile of the real rows; keep existing ones as they are."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
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
        path = suite_path(directory, table, kind)
        if not path.exists():
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(builders[kind](), indent=2, default=str) + "\n")
            tmp.replace(path)
        paths[kind] = path
    return paths


def load_suite(path: Path, *, thresholds: Thresholds | None = None) -> dict:
    """Read a suite; thresholds set explicitly in the dbt meta override the file's bounds.

    A reported-only metric (`expect_column_values_to_not_be_null`) given a threshold in the
    meta becomes a bound (`expect_column_values_to_be_between`).
    """
    suite = json.loads(Path(path).read_text())
    if thresholds is not None:
        explicit = thresholds.model_fields_set
        for exp in suite.get("expectations", []):
            field = (exp.get("meta") or {}).get("threshold")
            if field in explicit and getattr(thresholds, field) is not None:
                key = "min_value" if exp["meta"].get("bound") == "min" else "max_value"
                exp["type"] = BETWEEN
                exp["kwargs"][key] = getattr(thresholds, field)
    return suite


def applicable(
    suite: Mapping[str, Any], *, available: set[str], not_applicable: set[str] = frozenset()
) -> dict:
    """The suite without expectations that cannot apply to this run.

    Dropped: reported-only expectations on metrics this run did not compute (utility without
    a target, attacks switched off), and any expectation on a metric that is undefined for
    this table (`not_applicable`: key uniqueness without a key, boundary adherence without a
    numeric column). A bound on a metric that should exist but is missing is kept, and fails
    naming the metric.
    """
    exps = [
        e
        for e in suite.get("expectations", [])
        if e["kwargs"].get("column") not in not_applicable
        and not (e.get("type") == PRESENT and e["kwargs"].get("column") not in available)
    ]
    return {**suite, "expectations": exps}


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
    gx_suite = gx.ExpectationSuite(**{k: v for k, v in suite.items() if k != "id"})
    result = bd.get_batch(batch_parameters={"dataframe": data}).validate(
        gx_suite, result_format="SUMMARY"
    )
    outcomes = []
    for r in result.results:
        cfg = r.expectation_config
        kw = {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}
        res = r.result or {}
        if r.exception_info and r.exception_info.get("raised_exception"):
            observed: Any = f"error: {r.exception_info.get('exception_message')}"
        elif "observed_value" in res:
            observed = res["observed_value"]
        elif cfg.type in (BETWEEN, PRESENT) and len(data) == 1 and kw["column"] in data:
            observed = data[kw["column"]].iloc[0]
        else:
            observed = None
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
