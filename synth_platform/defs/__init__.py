"""Thin Dagster wiring over `synth_platform.lib`."""
