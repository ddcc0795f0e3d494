"""Vectorised fidelity and privacy evaluation of synthetic tables (pure, Dagster-free).

Fidelity follows SDMetrics' single-table ``QualityReport`` ("Column Shapes", "Column Pair
Trends" and their mean); privacy follows SDMetrics' distance-to-closest-record definition with
exact nearest neighbours, and adds exact-copy and PII-leak counts.
"""

from synth_platform.lib.evaluation.fidelity import (
    ASSOCIATION_THRESHOLD,
    CORRELATION_THRESHOLD,
    FidelityReport,
    evaluate_fidelity,
)
from synth_platform.lib.evaluation.privacy import PrivacyReport, evaluate_privacy, find_pii_leaks

__all__ = [
    "ASSOCIATION_THRESHOLD",
    "CORRELATION_THRESHOLD",
    "FidelityReport",
    "PrivacyReport",
    "evaluate_fidelity",
    "evaluate_privacy",
    "find_pii_leaks",
]
