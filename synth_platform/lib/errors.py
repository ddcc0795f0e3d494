"""Domain errors. Each message says what was wrong, for which table, and what to do."""

from __future__ import annotations

from typing import Any


class SynthPlatformError(Exception):
    """Base class for every error raised by synth_platform."""


class SpecError(SynthPlatformError):
    """A dbt model's `meta.synthetic` block is invalid."""

    def __init__(self, *, model: str, field: str, problem: str) -> None:
        self.model = model
        self.field = field
        self.problem = problem
        super().__init__(
            f"dbt model '{model}': invalid `meta.synthetic.{field}`: {problem}. "
            f"Fix the `config.meta.synthetic` block in the model's .yml file."
        )


class ProjectError(SynthPlatformError):
    """The user's dbt project or the plugin's configuration cannot be used as given."""


class SourceError(SynthPlatformError):
    """The real table to synthesize is missing, empty or unreadable."""


class UnsupportedColumnError(SynthPlatformError):
    """A column has a type the synthesizers cannot model."""


class IdentifierError(SynthPlatformError):
    """A table or column name is not a safe SQL identifier."""


class TrainingError(SynthPlatformError):
    """The synthesizer could not be fitted."""


class GateFailedError(SynthPlatformError):
    """A blocking gate failed, so the candidate must not be published."""

    def __init__(self, *, table: str, failures: list[str], details: Any = None) -> None:
        self.table = table
        self.failures = failures
        self.details = details
        super().__init__(
            f"table '{table}': publication blocked by failed gate(s): {', '.join(failures)}. "
            "The previous release stays published; see the check results for scores and fixes."
        )


class PublicationError(SynthPlatformError):
    """A release could not be written to the public store."""


class TrackingError(SynthPlatformError):
    """The MLflow tracking server cannot be reached (checked before a fit)."""
