"""Pure, Dagster-free domain logic of synth_platform.

Every module here is importable and testable without Dagster: specs, metadata, splitting,
synthesis, evaluation, expectations, tracking and publication.
"""
