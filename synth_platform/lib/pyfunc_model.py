"""The MLflow pyfunc wrapper of a fitted synthesizer, kept apart so that it travels by value.

:mod:`synth_platform.lib.tracking` registers this module with cloudpickle by value, so a logged
model's ``python_model.pkl`` holds this class itself, not a reference to synth_platform: with the
synthesizer's own file (CART pickles its module by value too, SDV's models need SDV) the
registered model loads and samples where synth_platform is not installed. Import nothing from
synth_platform here."""

from __future__ import annotations

import threading
from typing import Any

import mlflow.pyfunc
import pandas as pd


class SynthesizerModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: `predict(pd.DataFrame({"num_rows": [n], "seed": [s]}))` samples rows;
    for a multi-table model, `{"scale": [x], "seed": [s], "table": [name]}` returns one table
    (``seed`` defaults to 0, ``scale`` to 1). The same inputs give the same rows; calls from
    several threads take turns (sampling resets the synthesizer's shared random state)."""

    def load_context(self, context: Any) -> None:
        import cloudpickle

        with open(context.artifacts["synthesizer"], "rb") as fh:
            self.synthesizer = cloudpickle.load(fh)
        self._lock = threading.Lock()  # made here: the instance is pickled before loading

    # `model_input: pd.DataFrame`: a hint MLflow infers no schema from, so it neither validates
    # this model's one row of sampling options as a list input nor warns, when the class is
    # defined, that `predict` has no hints (its `filter_user_warnings_once` wrapper overrides
    # a caller's `warnings` filter, so suppressing it around the class does not work).
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        row = model_input.iloc[0]
        seed = int(row.get("seed", 0)) % 2**32
        with self._lock:
            self.synthesizer.reset_sampling()
            if hasattr(self.synthesizer, "sample_scale"):  # multi-table (HMA): one table of it
                self.synthesizer._numpy_seed = seed
                sampled = self.synthesizer.sample_scale(scale=float(row.get("scale", 1.0)))
                return sampled[str(row["table"])]
            self.synthesizer._set_random_state(seed)
            sampled = self.synthesizer.sample(num_rows=int(row["num_rows"]))
            return next(iter(sampled.values()))
