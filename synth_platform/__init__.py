"""synth_platform: gated, published synthetic twins of dbt models, as a Dagster plugin.

Public API (everything else is private and may change):

- :class:`SyntheticTwinsComponent`: the `dg` component
  (`dg scaffold defs synth_platform.SyntheticTwinsComponent twins`).
- :func:`build_synthetic_definitions`: the factory the component wraps, for projects without
  components (`@dbt_assets` + `dg.Definitions`).
- :class:`SynthHomeResource`, :class:`MlflowResource`, :class:`WarehouseResource`: the resources
  the assets use (keys `synth`, `synth_mlflow`, `synth_warehouse`).
- :func:`connect`: read-only consumer access to a public store.
- :func:`synth_platform.forkserver.built_once_per_forkserver`: definitions built once per
  multiprocess run (in its forkserver), not once per step process.
"""

from synth_platform.component import SyntheticTwinsComponent
from synth_platform.defs.build import build_synthetic_definitions
from synth_platform.defs.resources import MlflowResource, SynthHomeResource, WarehouseResource
from synth_platform.lib.publish import connect

__version__ = "0.3.1"

__all__ = [
    "MlflowResource",
    "SynthHomeResource",
    "SyntheticTwinsComponent",
    "WarehouseResource",
    "__version__",
    "build_synthetic_definitions",
    "connect",
]
