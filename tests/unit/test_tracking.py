"""MLflow tracking (synth_platform.lib.tracking)."""

import os
from pathlib import Path


def test_logging_a_fit_does_not_leak_the_tracking_uri_into_the_environment(tmp_path, monkeypatch):
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; build_definitions reads it, so a
    # fit in one home must not redirect the next definitions load of the process.
    import pandas as pd
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    from synth_platform.lib.tracking import log_training

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    meta = {"tables": {"t": {"columns": {"x": {"sdtype": "numerical"}}}}}
    synthesizer = GaussianCopulaSynthesizer(Metadata.load_from_dict(meta))
    synthesizer.fit({"t": frame})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = log_training(
        tracking_uri=uri, artifact_root=tmp_path / "artifacts", table="t", params={}, tags={},
        metrics={}, synthesizer=synthesizer, metadata_json=meta, pip_requirements=[],
    )  # fmt: skip
    assert run.model_version == "1"
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_logging_a_model_does_not_scan_every_installed_distribution(tmp_path, monkeypatch):
    # MLflow maps every installed distribution to its modules before checking a model's
    # requirements (1.2 s per process); ours are pinned from the installed versions, so our
    # model is logged without that scan, and the process's map is left for MLflow to build.
    import mlflow
    import pandas as pd
    from mlflow.utils import requirements_utils as ru
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    from synth_platform.lib import lifecycle
    from synth_platform.lib.tracking import log_training

    scans = []  # (MLflow catches any error of its check: count the calls instead)
    checked = []  # ... and the check must have run, with our map in place
    init = ru._init_packages_to_modules_map
    monkeypatch.setattr(
        ru, "_init_packages_to_modules_map",
        lambda: checked.append(ru._MODULES_TO_PACKAGES is not None) or init(),
    )  # fmt: skip
    monkeypatch.setattr(ru, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(
        ru.importlib_metadata, "packages_distributions", lambda: scans.append(1) or {}
    )
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    meta = {"tables": {"t": {"columns": {"x": {"sdtype": "numerical"}}}}}
    synthesizer = GaussianCopulaSynthesizer(Metadata.load_from_dict(meta))
    synthesizer.fit({"t": frame})
    requirements = list(lifecycle._pip_requirements())
    run = log_training(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "art",
        table="t", params={}, tags={}, metrics={}, synthesizer=synthesizer, metadata_json=meta,
        pip_requirements=requirements,
    )  # fmt: skip
    assert not scans and checked and all(checked) and ru._MODULES_TO_PACKAGES is None
    logged = mlflow.artifacts.download_artifacts(
        f"models:/synth_platform.t/{run.model_version}", tracking_uri=run.tracking_uri
    )
    pinned = Path(logged, "requirements.txt").read_text()
    assert all(r in pinned for r in requirements)


def test_a_gate_report_lands_on_its_run_with_every_metric(tmp_path):
    # A gate attaches its report and metrics to the fit's run in one batch: every metric (a NaN
    # included, which a fail-closed gate may record), and a URI where the report really is.
    import math
    from urllib.parse import urlsplit

    from mlflow import MlflowClient

    from synth_platform.lib.tracking import log_run_artifact

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(exp).info.run_id
    metrics = {f"gate.fidelity.m{i}": i / 10 for i in range(12)} | {"gate.fidelity.x": math.nan}
    for name in ("fidelity.json", "privacy.json"):  # the second from the cached artifact URI
        where = log_run_artifact(
            tracking_uri=uri, run_id=run_id, name=name, payload={"passed": False}, metrics=metrics
        )
        assert Path(urlsplit(where).path).read_text() == '{\n  "passed": false\n}'
    logged = client.get_run(run_id).data.metrics
    assert {k: v for k, v in logged.items() if k != "gate.fidelity.x"} == {
        k: v for k, v in metrics.items() if k != "gate.fidelity.x"
    }
    assert math.isnan(logged["gate.fidelity.x"])


def _open_store(uri: str) -> None:  # in a spawned process
    from synth_platform.lib.tracking import _client

    client = _client(uri)
    client.search_registered_models(max_results=1)


def test_processes_opening_a_new_sqlite_store_at_once_all_succeed(tmp_path):
    # The multiprocess executor's first synthesizers open a fresh home's store together; without
    # the lock their alembic migrations collide (4 of 4 tries with 3 processes failed).
    import multiprocessing

    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open_store, args=(uri,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0, 0]


def test_the_registered_model_loads_and_samples_without_a_warning(tmp_path):
    # What a consumer of the registry does: load `models:/synth_platform.<table>/<version>` as a
    # pyfunc and ask it for rows; its signature says what to pass. Logging prints neither
    # MLflow's "add type hints" warning (which overrides a caller's filter), its "no input
    # example" one, nor the progress bar of its copy of the synthesizer's file. The models load where synth_platform cannot be imported (the README says
    # so): the wrapper and CART travel by value.
    import subprocess
    import sys

    log = f"""
import warnings
warnings.simplefilter("always")
import pathlib
import numpy as np, pandas as pd
from sdv.metadata import Metadata
from sdv.multi_table import HMASynthesizer
from synth_platform.lib.cart import CartSynthesizer
from synth_platform.lib.tracking import log_training
rng = np.random.default_rng(0)
frame = pd.DataFrame({{"x": rng.normal(size=300), "c": rng.choice(list("abc"), 300)}})
cart = CartSynthesizer({{"x": "numerical", "c": "categorical"}}, table="t", seed=0)
cart.fit({{"t": frame}})
parents = pd.DataFrame({{"pid": range(20), "a": rng.random(20)}})
children = pd.DataFrame({{"cid": range(60), "pid": rng.integers(0, 20, 60), "b": rng.random(60)}})
meta = Metadata.detect_from_dataframes({{"p": parents, "c": children}})
hma = HMASynthesizer(meta)
hma.fit({{"p": parents, "c": children}})
for name, model in (("t", cart), ("g", hma)):
    log_training(
        tracking_uri="sqlite:///{tmp_path / "mlflow.db"}",
        artifact_root=pathlib.Path("{tmp_path / "art"}"), table=name, params={{}}, tags={{}},
        metrics={{}}, synthesizer=model, metadata_json={{}}, pip_requirements=[],
    )
print("LOGGED")
"""
    out = subprocess.run([sys.executable, "-c", log], capture_output=True, text=True)
    assert out.returncode == 0 and "LOGGED" in out.stdout, out.stderr[-3000:]
    assert "type hint" not in out.stderr.lower(), out.stderr[-3000:]
    assert "input example" not in out.stderr.lower(), out.stderr[-3000:]
    assert "Downloading artifacts" not in out.stderr, out.stderr[-3000:]  # MLflow's copy bar
    load = f"""
import sys
sys.modules["synth_platform"] = None  # as if it were not installed
import mlflow, pandas as pd
mlflow.set_tracking_uri("sqlite:///{tmp_path / "mlflow.db"}")
t = mlflow.pyfunc.load_model("models:/synth_platform.t/1")
rows = t.predict(pd.DataFrame({{"num_rows": [7], "seed": [3]}}))
again = t.predict(pd.DataFrame({{"num_rows": [7], "seed": [3]}}))
assert list(rows.columns) == ["x", "c"] and len(rows) == 7, rows
pd.testing.assert_frame_equal(rows, again)
assert len(t.predict(pd.DataFrame({{"num_rows": [5]}}))) == 5  # seed is optional
assert t.metadata.signature.inputs.input_names() == ["num_rows", "seed"]
g = mlflow.pyfunc.load_model("models:/synth_platform.g/1")
one = g.predict(pd.DataFrame({{"table": ["c"], "seed": [1]}}))  # scale defaults to 1
assert list(one.columns) == ["cid", "pid", "b"] and len(one) > 0, one
pd.testing.assert_frame_equal(one, g.predict(pd.DataFrame({{"table": ["c"], "seed": [1]}})))
assert len(g.predict(pd.DataFrame({{"table": ["p"], "scale": [2.0]}}))) == 40
print("SAMPLED")
"""
    out = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True)
    assert out.returncode == 0 and "SAMPLED" in out.stdout, out.stderr[-3000:]


def test_the_makefiles_environment_turns_mlflow_telemetry_off():
    # `make demo`/`dev`/`bench` export what keeps the tools offline. MLflow 3 reads
    # MLFLOW_DISABLE_TELEMETRY (or DO_NOT_TRACK=true, not 1): the Makefile used to export an
    # MLFLOW_ENABLE_TELEMETRY that MLflow does not read, and MLflow's telemetry stayed on.
    # MLflow also turns it off by itself under pytest or CI: the variables it looks at for
    # that (read from its source) are left out of the child's environment, so the control,
    # without MLFLOW_DISABLE_TELEMETRY, must find it on.
    import inspect
    import re
    import subprocess
    import sys

    from mlflow.telemetry import utils

    makefile = Path(__file__).resolve().parents[2] / "Makefile"
    exported = dict(re.findall(r"^export (\w+) :?= (.*)$", makefile.read_text(), re.M))
    assert "MLFLOW_DISABLE_TELEMETRY" in exported
    ci = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', inspect.getsource(utils._is_ci_env_or_testing)))
    assert {"PYTEST_CURRENT_TEST", "CI"} <= ci
    env = {k: v for k, v in os.environ.items() if k not in ci and "TELEMETRY" not in k}
    env.pop("DO_NOT_TRACK", None)
    env.update({k: v for k, v in exported.items() if "$" not in v})
    code = "from mlflow.telemetry.utils import is_telemetry_disabled as off; print(off())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr[-2000:]
    env.pop("MLFLOW_DISABLE_TELEMETRY")  # the control: DO_NOT_TRACK=1 alone does not do it
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
