"""Import, once, the libraries the synthetic steps use: preload it in the step-launching process.

Loading the definitions imports none of them (see `synth_platform.defs.tables`), so each step
imports what it runs: in a fresh process that is seconds before any work (measured on 2 cores:
Great Expectations ~4 s per gate step, SDMetrics with torch ~2.4 s per fidelity gate, MLflow's
SQL store ~1.4 s per tracked step, dbt's graph selector ~0.5 s and Dagster's instance storage
~1 s per step). Dagster's multiprocess executor starts every step in a new process: preload this
module in its forkserver, and every step is forked with them imported:

    execution:
      config:
        multiprocess:
          start_method:
            forkserver:
              preload_modules: [synth_platform.preload]

(`preload_modules` replaces Dagster's default, the job's own module; list yours too if it does
expensive imports.) Importing leaves no file or connection open and starts no Python thread;
in a forkserver it also has the server freeze its objects before each fork
(`synth_platform.forkserver.freeze_before_fork`: 0.56 s of garbage collection less per step).
The in-process executor does not need it.
"""

import contextlib
import importlib

from synth_platform.forkserver import freeze_before_fork

#: Imported by the steps at run time, in the order a step meets them.
MODULES = (
    "synth_platform.lib.lifecycle",  # pandas, pyarrow, numpy
    "synth_platform.lib.group",  # MLflow, SciPy, numba (the re-keying kernels)
    "synth_platform.lib.evaluation",  # the gates' engine: SciPy, scikit-learn, numba
    "synth_platform.lib.tracking",
    "dagster_dbt",  # the dbt assets, which every step process builds again
    "sklearn.tree",  # the CART synthesizer
    "sdv.metadata",
    "sdv.single_table",
    "sdmetrics.reports.single_table",  # the fidelity gate's QualityReport (imports torch)
    "great_expectations",  # every gate validates its suites
    "mlflow.store.tracking.sqlalchemy_store",  # the default SQLite tracking store
    "mlflow.store.model_registry.sqlalchemy_store",
    "matplotlib.figure",  # the evaluation report
    "matplotlib.backends.backend_agg",
    "pyarrow.dataset",  # pandas.read_parquet
    "tabulate",  # pandas.DataFrame.to_markdown (metadata tables)
    "dbt.config",  # the warehouse location, from the dbt profile
    # Every step builds the definitions again, and dagster-dbt's `@dbt_assets` (and its
    # component) select the dbt models with dbt's graph selector, importing it (networkx) then:
    # ~0.5 s per step on 2 idle cores, the largest import left in a step process without it.
    "dbt.graph.cli",
    "dbt.graph.selector",
    "dbt.contracts.graph.manifest",
    # Every step process opens the Dagster instance (`DagsterInstance.from_ref`), whose storage
    # Dagster imports then: 1.3 s per step forked without these, 0.2 s with them. Private
    # module paths: a Dagster that moves them only loses this shortcut.
    "dagster._core.storage.runs",
    "dagster._core.storage.event_log",
    "dagster._core.storage.schedules",
    "dagster._core.storage.sqlite_storage",
    # Imported lazily by the first call that needs them, in every step process that makes it
    # (py-spy over a forked run: ~0.1 s per step together): universal_pathlib (Dagster's
    # paths), GitPython (MLflow tags each fit's run with the git commit), the dbt-duckdb
    # adapter (the warehouse location), Dagster's .env loader (opening the instance).
    "upath.core",
    "git",
    "dbt.adapters.duckdb",
    "dagster._core.secrets.env_file",
)

for _name in MODULES:
    # A library missing here (an MLflow without its SQL store) is then imported, or reported,
    # by the step that needs it, as without this module.
    with contextlib.suppress(ImportError):
        importlib.import_module(_name)

# In a forkserver, freeze the server's objects before each fork, so that the garbage collector
# of a forked step does not walk (and copy) them all: see `freeze_before_fork`.
freeze_before_fork()
