"""The one entry point Dagster loads (`dagster dev`, workspace.yaml, `[tool.dg]`)."""

import dagster as dg

from synth_platform.defs.build import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
