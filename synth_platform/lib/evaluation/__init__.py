"""Vectorised fidelity and privacy evaluation of synthetic tables (pure, Dagster-free).

Fidelity follows SDMetrics' single-table ``QualityReport`` ("Column Shapes", "Column Pair
Trends" and their mean) and validity its ``DiagnosticReport``; privacy follows SDMetrics' distance-to-closest-record definition with
exact nearest neighbours, and adds exact-copy and PII-leak counts. Utility compares models
trained on synthetic and on real rows (TSTR vs TRTR); the attacks follow anonymeter's
singling-out, linkability and inference evaluators.
"""

from synth_platform.lib.evaluation.attacks import AttackReport, AttackResult, evaluate_attacks
from synth_platform.lib.evaluation.diagnostic import DiagnosticReport, evaluate_diagnostic
from synth_platform.lib.evaluation.fidelity import (
    ASSOCIATION_THRESHOLD,
    CORRELATION_THRESHOLD,
    FidelityReport,
    QualityReportComparison,
    compare_with_quality_report,
    evaluate_fidelity,
)
from synth_platform.lib.evaluation.privacy import PrivacyReport, evaluate_privacy, find_pii_leaks
from synth_platform.lib.evaluation.utility import UtilityReport, evaluate_utility

__all__ = [
    "ASSOCIATION_THRESHOLD",
    "CORRELATION_THRESHOLD",
    "AttackReport",
    "AttackResult",
    "DiagnosticReport",
    "FidelityReport",
    "PrivacyReport",
    "QualityReportComparison",
    "UtilityReport",
    "compare_with_quality_report",
    "evaluate_attacks",
    "evaluate_diagnostic",
    "evaluate_fidelity",
    "evaluate_privacy",
    "evaluate_utility",
    "find_pii_leaks",
]
