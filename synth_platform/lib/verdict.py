"""One fail-closed verdict for every gate, table or group.

The table gates (``fidelity``, ``privacy``, ``validity``) and the group gates (``integrity``,
``cardinality``, ``cross_table``) all end in :func:`decide`. A gate computes its metrics with
the project's own engine; each metric is a number or :class:`NotApplicable` with a typed
:class:`NotApplicableReason`. ``NaN``, infinities and ``None`` are never numbers (:func:`as_metric`
turns them into ``NotApplicable(NOT_COMPUTED)``), so they can neither pass a bound nor delete one.
The bounds come from the gate's Great Expectations suites (:func:`bounds_from_suite`); GE
validates the numbers on a one-row metric table that holds numbers only, and :func:`decide`
checks every GE verdict against the bound itself, so a validator quirk cannot pass a metric.

:data:`RULE` is the rule, word for word as the README states it; every check line shows how it
applied (``status``, ``rule``).

Messages (:attr:`Verdict.failures`) name the metric, its score and the failing column(s), never
a real value: they reach Dagster metadata, check descriptions and logs. Row-level findings of
the validity suite go through :func:`row_findings`, which names the column and the kind of
violation ("amount: values below the profiled minimum (12 rows)") and keeps the observed
values and profiled bounds for the private report only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import numpy as np
import pandas as pd

from synth_platform.lib import expectations as gx_suites
from synth_platform.lib.errors import ProjectError


class NotApplicableReason(StrEnum):
    """Why a metric has no number."""

    # Structural: the real table has no such structure, whatever the candidate.
    NO_PAIR_WITH_REAL_TREND = "no column pair shows a trend in the real data"
    ONE_MODELLED_COLUMN = "one modelled column"
    NO_TARGET = "no utility target declared"
    CONSTANT_TARGET = "the utility target is constant in the real rows"
    NO_PRIMARY_KEY = "no primary key"
    NO_NUMERIC_COLUMN = "no numeric or datetime column"
    NO_CATEGORICAL_COLUMN = "no categorical column"
    NO_FOREIGN_KEY = "no foreign key value in the real rows"
    NO_CROSS_TABLE_PAIR = "no parent x child column pair"
    # Not structural: the metric should have been computable; a bound on it fails.
    TOO_FEW_ROWS = "too few rows to measure"
    EMPTY_CANDIDATE = "the candidate has no rows"
    ALL_NULL = "every value is missing"
    NO_COLUMN_SCORED = "no column could be scored"
    BASELINE_NOT_POSITIVE = "the real-data baseline is not positive"
    ATTACKS_OFF = "the attacks are switched off (meta.synthetic.attacks)"
    NOT_COMPUTED = "not computed (NaN, infinite or missing)"


STRUCTURAL_REASONS: frozenset[NotApplicableReason] = frozenset(
    {
        NotApplicableReason.NO_PAIR_WITH_REAL_TREND,
        NotApplicableReason.ONE_MODELLED_COLUMN,
        NotApplicableReason.NO_TARGET,
        NotApplicableReason.CONSTANT_TARGET,
        NotApplicableReason.NO_PRIMARY_KEY,
        NotApplicableReason.NO_NUMERIC_COLUMN,
        NotApplicableReason.NO_CATEGORICAL_COLUMN,
        NotApplicableReason.NO_FOREIGN_KEY,
        NotApplicableReason.NO_CROSS_TABLE_PAIR,
    }
)
"""Reasons for which a bound on a not-applicable metric is skipped; every other one fails."""


def _reasons(structural: bool) -> str:
    return "; ".join(
        r.value for r in NotApplicableReason if (r in STRUCTURAL_REASONS) is structural
    )


RULE = (
    "Every gate, table (fidelity, privacy, validity) or group (integrity, cardinality, "
    "cross_table), goes through one verdict function. Each metric is a number or not "
    "applicable with a typed reason; NaN, infinity or a missing value is never a number (it is "
    "'not applicable: not computed'). A bounded metric with a number passes when it is within "
    "its bound (bounds are inclusive). A not-applicable metric with a bound is skipped only "
    "when its reason is structural, i.e. the real table has no such structure ("
    + _reasons(True)
    + "); every other not-applicable metric with a bound FAILS ("
    + _reasons(False)
    + "). Metrics without a bound are reported and never decide. A gate in which no bounded "
    "metric has a number fails unless every bounded metric is structurally not applicable AND "
    "at least one metric of the gate (bounded or reported: listed in its suites) has a number; "
    "a gate in which no metric has a number fails as 'nothing applicable'. The validity gate "
    "also fails on any row-level finding (a profiled bound, category set, type, key or "
    "not-null expectation violated, or a column the real rows fill left entirely empty). "
    "Bounds are never dropped: every check lists each metric of the gate with its status "
    "(passed / failed / not applicable: <reason>) and the rule applied."
)
"""The verdict rule, as documented in the README."""


@dataclass(frozen=True)
class NotApplicable:
    """A metric without a number, and why."""

    reason: NotApplicableReason

    @property
    def structural(self) -> bool:
        return self.reason in STRUCTURAL_REASONS

    def __str__(self) -> str:
        return f"not applicable: {self.reason.value}"


Metric = float | NotApplicable


def as_metric(value: Any) -> Metric:
    """A metric value as a finite float or :class:`NotApplicable` (NaN, inf, None and
    anything that is not a real number are ``NOT_COMPUTED``)."""
    if isinstance(value, NotApplicable):
        return value
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        if math.isfinite(number):
            return number
    return NotApplicable(NotApplicableReason.NOT_COMPUTED)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (what a bound can be checked against)."""
    return isinstance(as_metric(value), float)


def plain(value: Any) -> float | None:
    """A metric for JSON and metadata: the number, or ``None`` when not applicable."""
    metric = as_metric(value)
    return metric if isinstance(metric, float) else None


@dataclass(frozen=True)
class Bound:
    """One expectation on a metric: a bound (``min_value`` and/or ``max_value``, inclusive),
    or neither (the metric is reported only)."""

    metric: str
    min_value: float | None = None
    max_value: float | None = None

    def __post_init__(self) -> None:
        for name in ("min_value", "max_value"):
            value = getattr(self, name)
            if value is not None and not is_number(value):
                raise ProjectError(
                    f"bound {name} of metric {self.metric!r} must be a finite number, "
                    f"got {value!r}; fix the suite file or the threshold in the dbt meta."
                )

    @property
    def bounded(self) -> bool:
        return self.min_value is not None or self.max_value is not None

    @property
    def direction(self) -> Literal["min", "max"]:
        return "max" if self.max_value is not None and self.min_value is None else "min"

    @property
    def threshold(self) -> float | None:
        return self.max_value if self.direction == "max" else self.min_value

    def holds(self, value: float) -> bool:
        return (self.min_value is None or value >= self.min_value) and (
            self.max_value is None or value <= self.max_value
        )

    def describe(self) -> str:
        parts = []
        if self.min_value is not None:
            parts.append(f"minimum {self.min_value:g}")
        if self.max_value is not None:
            parts.append(f"maximum {self.max_value:g}")
        return ", ".join(parts)


def bounds_from_suite(suite: Mapping[str, Any]) -> list[Bound]:
    """The bounds of a metric suite (``expect_column_values_to_be_between`` on a metric, or
    ``expect_column_values_to_not_be_null`` for a reported metric).

    Raises:
        ProjectError: A metric suite holds another expectation type (it could not be checked
            fail-closed), or a bound is not a finite number.
    """
    out = []
    for exp in suite.get("expectations", []):
        kwargs = exp.get("kwargs") or {}
        metric = kwargs.get("column")
        if exp.get("type") == gx_suites.BETWEEN and metric:
            out.append(Bound(metric, kwargs.get("min_value"), kwargs.get("max_value")))
        elif exp.get("type") == gx_suites.PRESENT and metric:
            out.append(Bound(metric))
        else:
            raise ProjectError(
                f"suite {suite.get('name', '?')!r}: expectation {exp.get('type')!r} on "
                f"{metric!r} is not supported in a metric suite; use {gx_suites.BETWEEN} "
                f"(a bound) or {gx_suites.PRESENT} (reported only)."
            )
    return out


Status = str  # "passed" | "failed" | "not applicable: <reason>" | "reported" | ...


@dataclass(frozen=True)
class Check:
    """One metric of a gate, as the verdict saw it."""

    gate: str
    metric: str
    value: float | None
    threshold: float | None
    direction: Literal["min", "max"]
    passed: bool
    status: Status
    rule: str
    subject: str | None = None

    def line(self) -> dict[str, Any]:
        """The check line stored with the verdict and shown in Dagster (scores only)."""
        return {
            "gate": self.gate,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "direction": self.direction,
            "passed": self.passed,
            "status": self.status,
            "rule": self.rule,
            **({"subject": self.subject} if self.subject else {}),
        }


@dataclass(frozen=True)
class Verdict:
    """The decision of one gate.

    Attributes:
        gate: The gate kind.
        passed: Whether the gate passed.
        checks: One per expectation of the gate's metric suites, in suite order.
        failures: Why it failed, public-safe (metric, score, column names, kind of violation).
        summary: One line: how many bounds were checked, skipped and failed.
        validation: Great Expectations' result of the metric table (private report).
    """

    gate: str
    passed: bool
    checks: tuple[Check, ...]
    failures: tuple[str, ...]
    summary: str
    validation: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def not_applicable(self) -> dict[str, str]:
        """Metric -> reason, for the metrics without a number."""
        return {
            c.metric: c.status.split("not applicable: ", 1)[1]
            for c in self.checks
            if "not applicable: " in c.status
        }


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _check(
    gate: str,
    b: Bound,
    subject: str | None,
    value: float | None,
    passed: bool,
    status: str,
    rule: str,
) -> Check:
    return Check(
        gate=gate,
        metric=b.metric,
        value=value,
        threshold=b.threshold,
        direction=b.direction,
        passed=passed,
        status=status,
        rule=rule,
        subject=subject,
    )


def decide(
    *,
    gate: str,
    metrics: Mapping[str, Any],
    bounds: Sequence[Bound],
    subjects: Mapping[str, str] | None = None,
    findings: Sequence[str] = (),
) -> Verdict:
    """The verdict of one gate under :data:`RULE`.

    Args:
        gate: The gate kind (``fidelity``, ``privacy``, ``validity``, ``integrity``,
            ``cardinality``, ``cross_table``).
        metrics: Metric -> value (a number, :class:`NotApplicable`, or anything else, which
            counts as not computed). A bound on a metric missing here is not computed.
        bounds: The gate's expectations on its metrics (:func:`bounds_from_suite`).
        subjects: Metric -> what it is about, shown with a failure ("worst column:
            amount"); column names only, never values.
        findings: Further public-safe failures (row-level validity findings); any fails the
            gate.

    Returns:
        The verdict; ``passed`` only under the rule, with every bound listed in ``checks``.
    """
    subjects = subjects or {}
    values = {b.metric: as_metric(metrics.get(b.metric)) for b in bounds}
    numbered = [b for b in bounds if isinstance(values[b.metric], float)]
    validation, ge_success = _validate(numbered, values)

    position = {id(b): j for j, b in enumerate(numbered)}
    checks: list[Check] = []
    failures: list[str] = []
    for b in bounds:
        value = values[b.metric]
        subject = subjects.get(b.metric)
        suffix = f" ({subject})" if subject else ""

        at = (gate, b, subject)
        if isinstance(value, NotApplicable):
            if not b.bounded:
                checks.append(
                    _check(*at, None, True, f"reported, {value}", "no bound: reported only")
                )
            elif value.structural:
                checks.append(_check(*at, None, True, str(value), "structural: bound skipped"))
            else:
                checks.append(
                    _check(*at, None, False, f"failed, {value}", "not structural: bound fails")
                )
                failures.append(
                    f"{b.metric}: {value.reason.value}, so its bound ({b.describe()}) fails"
                    + suffix
                )
        elif not b.bounded:
            checks.append(_check(*at, value, True, "reported", "no bound: reported only"))
        else:
            holds = b.holds(value)
            ok = holds and ge_success.get(position[id(b)], False)
            checks.append(_check(*at, value, ok, "passed" if ok else "failed", "bound checked"))
            if ok:
                continue
            if holds:  # the bound holds but the validator did not confirm it: fail closed
                failures.append(
                    f"{b.metric}: {_fmt(value)} not confirmed by the validator "
                    f"({b.describe()})" + suffix
                )
            elif b.min_value is not None and value < b.min_value:
                failures.append(
                    f"{b.metric}: {_fmt(value)} below the minimum {b.min_value:g}" + suffix
                )
            else:
                failures.append(
                    f"{b.metric}: {_fmt(value)} above the maximum {b.max_value:g}" + suffix
                )

    bounded = [c for c, b in zip(checks, bounds, strict=True) if b.bounded]
    scored = [c for c in bounded if c.value is not None]
    skipped = [c for c in bounded if c.value is None and c.passed]
    has_number = any(c.value is not None for c in checks)
    if not has_number:
        # Nothing applicable. (With a number but no bound scored, a non-structural bound has
        # already failed by name, or every bound is structural and the gate passes.)
        failures.append(
            f"{gate}: nothing applicable: no metric of the gate has a number"
            + (f" ({'; '.join(sorted({c.status for c in checks}))})" if checks else "")
        )
    failures.extend(findings)
    summary = (
        f"{len(scored)} of {len(bounded)} bounds checked, {len(skipped)} skipped as "
        f"structurally not applicable, {len(failures)} failure(s)"
    )
    return Verdict(
        gate=gate,
        passed=not failures,
        checks=tuple(checks),
        failures=tuple(failures),
        summary=summary,
        validation=validation,
    )


def _validate(
    numbered: Sequence[Bound], values: Mapping[str, Metric]
) -> tuple[dict[str, Any], dict[int, bool]]:
    """GE over a one-row table of numbers only: success per position in ``numbered``."""
    if not numbered:
        return {}, {}
    expectations = []
    for b in numbered:
        kwargs: dict[str, Any] = {"column": b.metric}
        if b.bounded:
            if b.min_value is not None:
                kwargs["min_value"] = b.min_value
            if b.max_value is not None:
                kwargs["max_value"] = b.max_value
            expectations.append({"type": gx_suites.BETWEEN, "kwargs": kwargs})
        else:
            expectations.append({"type": gx_suites.PRESENT, "kwargs": kwargs})
    frame = pd.DataFrame([{b.metric: values[b.metric] for b in numbered}], dtype=float)
    outcome = gx_suites.validate(
        suite={"name": "metrics", "expectations": expectations}, data=frame
    )
    if len(outcome.outcomes) != len(numbered):
        return outcome.result_json, {}  # nothing confirmed: every bounded number fails
    success = {}
    for j, (b, o) in enumerate(zip(numbered, outcome.outcomes, strict=True)):
        success[j] = bool(o.success) and o.column == b.metric
    return outcome.result_json, success


# ------------------------------------------------------------------ row-level findings


def row_findings(
    outcomes: Sequence[gx_suites.ExpectationOutcome],
    suite: Mapping[str, Any],
    data: pd.DataFrame,
) -> tuple[list[str], list[str]]:
    """Failed row-level expectations (the validity suite over the candidate rows) as
    ``(public, private)`` messages.

    Public messages name the column and the kind of violation with a row count
    ("amount: values below the profiled minimum (12 rows)"); the profiled bounds and
    categories are real values, so they appear only in the private messages.
    """
    public: list[str] = []
    private: list[str] = []
    # GE does not keep the suite's order: find each outcome's expectation by type and column.
    by_key: dict[tuple[Any, Any], Mapping[str, Any]] = {}
    for exp in suite.get("expectations", []):
        kwargs = exp.get("kwargs") or {}
        by_key.setdefault((exp.get("type"), kwargs.get("column")), kwargs)
    for o in outcomes:
        if o.success:
            continue
        kwargs = {**by_key.get((o.type, o.column), {}), **o.bound}
        private.append(
            f"{o.type}({o.column}): observed {o.observed!r}, bound {o.bound}"
            + (f", {o.unexpected_count} unexpected" if o.unexpected_count else "")
            + (f", kwargs {kwargs}" if kwargs else "")
        )
        public.extend(_public_finding(o, kwargs, data))
    return public, private


def _rows(n: int | None) -> str:
    return "" if n is None else f" ({n} row{'s' if n != 1 else ''})"


def _public_finding(
    o: gx_suites.ExpectationOutcome, kwargs: Mapping[str, Any], data: pd.DataFrame
) -> list[str]:
    col = o.column or "table"
    if isinstance(o.observed, str) and o.observed.startswith("error: "):
        return [f"{col}: {o.type} could not be evaluated (details in the private report)"]
    if o.type == "expect_table_columns_to_match_ordered_list":
        expected = list(kwargs.get("column_list") or [])
        found = list(data.columns)
        missing = [c for c in expected if c not in found]
        extra = [c for c in found if c not in expected]
        parts = [f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else ""]
        detail = ", ".join(p for p in parts if p) or "same columns in another order"
        return [f"table: columns differ from the profiled list ({detail})"]
    if o.type == "expect_column_values_to_be_of_type":
        return [
            f"{col}: type {o.observed!r} differs from the profiled type {kwargs.get('type_')!r}"
        ]
    if o.type == "expect_column_values_to_be_unique":
        return [f"{col}: duplicate values{_rows(o.unexpected_count)}"]
    if o.type == "expect_column_values_to_not_be_null":
        return [f"{col}: missing values{_rows(o.unexpected_count)}"]
    if o.type == "expect_column_values_to_be_in_set":
        return [f"{col}: categories outside the profiled set{_rows(o.unexpected_count)}"]
    if o.type == "expect_column_values_to_be_between":
        sides = _outside(data, col, kwargs)
        if sides is None:
            return [f"{col}: values outside the profiled range{_rows(o.unexpected_count)}"]
        below, above = sides
        out = []
        if below:
            out.append(f"{col}: values below the profiled minimum{_rows(below)}")
        if above:
            out.append(f"{col}: values above the profiled maximum{_rows(above)}")
        return out or [f"{col}: values outside the profiled range{_rows(o.unexpected_count)}"]
    return [f"{col}: {o.type} failed{_rows(o.unexpected_count)}"]


def _outside(data: pd.DataFrame, col: str, kwargs: Mapping[str, Any]) -> tuple[int, int] | None:
    """Rows below the minimum and above the maximum (``None`` if they cannot be compared)."""
    if col not in data.columns:
        return None
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    values = data[col]
    try:
        if any(
            isinstance(v, str | datetime | np.datetime64) for v in (lo, hi)
        ) or pd.api.types.is_datetime64_any_dtype(values):
            values = pd.to_datetime(values, errors="coerce")
            lo = None if lo is None else pd.Timestamp(lo)
            hi = None if hi is None else pd.Timestamp(hi)
        else:
            values = pd.to_numeric(values, errors="coerce")
        below = int((values < lo).sum()) if lo is not None else 0
        above = int((values > hi).sum()) if hi is not None else 0
    except (TypeError, ValueError):  # e.g. zone-aware values against naive bounds
        return None
    return below, above
