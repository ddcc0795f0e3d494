"""synth_platform: gated, published synthetic twins of warehouse tables, orchestrated by Dagster."""

__version__ = "0.1.0"
