"""MLflow tracking: one run per fit, the model registered, gate results attached to the run."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cloudpickle
import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

# Importing mlflow.pyfunc makes MLflow 3 warn about type hints of its own bundled model classes:
# keep logs clean.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    import mlflow.pyfunc

from synth_platform.lib import pyfunc_model  # noqa: E402 - after MLflow's pyfunc, quietly

# The pyfunc wrapper travels by value in every logged model (see `pyfunc_model`); the name
# stays importable here for models logged before it moved, which refer to it by this path.
cloudpickle.register_pickle_by_value(pyfunc_model)
SynthesizerModel = pyfunc_model.SynthesizerModel


@dataclass(frozen=True)
class TrainingRun:
    """Where a fit is recorded."""

    run_id: str
    experiment_id: str
    model_name: str | None
    model_version: str | None
    tracking_uri: str

    def ui_url(self, ui_base: str) -> str:
        return f"{ui_base.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"


#: Seconds to wait for an http(s) tracking server before a fit (`SYNTH_MLFLOW_PROBE_TIMEOUT`).
PROBE_TIMEOUT_S = float(os.environ.get("SYNTH_MLFLOW_PROBE_TIMEOUT", "5"))


def check_tracking_server(tracking_uri: str, *, timeout: float | None = None) -> None:
    """Fail fast, before any fit, when an http(s) tracking server does not answer.

    MLflow itself retries an unreachable server for minutes, and only when logging, after the
    fit. Any HTTP answer (even an error status, e.g. for missing credentials) counts as
    reachable; local stores (`sqlite:`, `file:`, paths) are not probed.

    Raises:
        TrackingError: no answer within ``timeout`` seconds; the message names the URI.
    """

    import requests

    from synth_platform.lib.errors import TrackingError

    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https"):
        return
    wait = PROBE_TIMEOUT_S if timeout is None else timeout
    shown = parts._replace(netloc=parts.hostname or "").geturl() if parts.password else tracking_uri
    try:
        requests.get(f"{tracking_uri.rstrip('/')}/health", timeout=(wait, wait))
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise TrackingError(
            f"MLflow tracking server {shown} is unreachable ({reason} within {wait:g} s); "
            "nothing was fitted. Start the server (`mlflow server`) or point "
            "`mlflow_tracking_uri` (the component's attribute, or the argument of "
            "`build_synthetic_definitions`) at a running one; without it the store is SQLite "
            "in the home."
        ) from None


#: MLflow 3 shows an experiment in its model-training view (not the GenAI one) with this tag.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def _experiment(
    client: MlflowClient, name: str, artifact_root: Path | None, *, tracking_uri: str
) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND["mlflow.experimentKind"]:
            client.set_experiment_tag(exp.experiment_id, *next(iter(EXPERIMENT_KIND.items())))
        return exp.experiment_id
    # A tracking server keeps the artifacts where it is configured to (its own store, proxied
    # with --serve-artifacts): a local folder would hold them on whichever machine ran the
    # step, out of reach of the server's UI and of every other machine.
    on_server = urlsplit(tracking_uri).scheme in ("http", "https")
    location = (
        artifact_root.resolve().as_uri() + "/" + name.replace("/", "_")
        if artifact_root and not on_server
        else None
    )
    return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)


def experiment_of(*, tracking_uri: str, run_id: str) -> str:
    """The experiment id of a run (for links into the MLflow UI)."""
    return _run_info(tracking_uri, run_id).experiment_id


@functools.cache
def _store_ready(tracking_uri: str) -> None:
    """Open a SQLite store under an exclusive lock beside its database, once per process.

    The first process to open a new store creates its tables by running MLflow's alembic
    migrations. Two step processes doing that at once (the multiprocess executor's first
    synthesizers in a fresh home) fail: "Online migration expected to match one row", "duplicate
    column name" (4 of 4 tries with 3 processes here). A server URI migrates on its own side.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return
    import fcntl

    database = Path(tracking_uri[len("sqlite:///") :])
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".init-lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = MlflowClient(tracking_uri=tracking_uri)
            client.search_experiments(max_results=1)  # the tracking store: creates the tables
            client.search_registered_models(max_results=1)  # the registry store, same database
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _client(tracking_uri: str) -> MlflowClient:
    """A client of ``tracking_uri``, its store opened safely (:func:`_store_ready`)."""
    _store_ready(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri)


@functools.lru_cache(maxsize=1024)
def _run_info(tracking_uri: str, run_id: str) -> Any:
    """A run's experiment and artifact root, which never change: each process asks the
    tracking store once per run, not once per link or report."""
    return _client(tracking_uri).get_run(run_id).info


def log_training(
    *,
    tracking_uri: str,
    artifact_root: Path | None,
    table: str,
    params: dict[str, Any],
    tags: dict[str, str],
    metrics: dict[str, float],
    synthesizer: Any,
    metadata_json: dict[str, Any],
    pip_requirements: Sequence[str],
) -> TrainingRun:
    """Record a fit: params, fingerprint tags, metrics, SDV metadata, the model (registered)."""
    model_name = f"synth_platform.{table}"
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / "synthesizer.pkl"
        synthesizer.save(str(model_file))
        (Path(tmp) / "sdv_metadata.json").write_text(json.dumps(metadata_json, indent=2))
        with _table_run(
            tracking_uri=tracking_uri, artifact_root=artifact_root, table=table,
            run_name=f"{table}-fit", params=params, tags=tags, metrics=metrics,
        ) as (run, exp_id):  # fmt: skip
            mlflow.log_artifact(str(Path(tmp) / "sdv_metadata.json"))
            requirements = list(pip_requirements)  # MLflow takes a list (or a file name)
            with (
                _requirements_checked_by_version(requirements),
                _no_copy_progress_bar(),
                warnings.catch_warnings(),
            ):
                # The signature says what to pass; an example would make MLflow sample at log
                # time, so it would only warn that there is none.
                warnings.filterwarnings("ignore", ".*An input example was not provided")
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=SynthesizerModel(),
                    artifacts={"synthesizer": str(model_file)},
                    pip_requirements=requirements,
                    registered_model_name=model_name,
                    signature=_signature(synthesizer),
                )
    version = getattr(info, "registered_model_version", None)
    return TrainingRun(
        run_id=run.info.run_id,
        experiment_id=exp_id,
        model_name=model_name,
        model_version=str(version) if version is not None else None,
        tracking_uri=tracking_uri,
    )


def _signature(synthesizer: Any) -> Any:
    """The model's input: the one row of sampling options :class:`SynthesizerModel` reads
    (a multi-table model's ``table`` and optional ``scale``, else ``num_rows``; an optional
    ``seed``), so that the registry shows a consumer what to pass and MLflow checks it: whole
    numbers for ``num_rows`` and ``seed`` (MLflow refuses a float column for them)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    if hasattr(synthesizer, "sample_scale"):
        columns = [ColSpec("string", "table"), ColSpec("double", "scale", required=False)]
    else:
        columns = [ColSpec("long", "num_rows")]
    return ModelSignature(inputs=Schema([*columns, ColSpec("long", "seed", required=False)]))


_PACKAGE_MAP_LOCK = threading.Lock()


@contextlib.contextmanager
def _requirements_checked_by_version(pip_requirements: list[str]) -> Iterator[None]:
    """Let MLflow check the model's pinned requirements without scanning the environment.

    Logging a model, MLflow compares each requirement with the installed version, but first
    maps every installed distribution to its modules (`importlib.metadata.packages_
    distributions`, reading every RECORD file: 1.2 s once per process here, a fifth of a
    100k-row group fit). It uses that map only to import a module when a distribution has no
    version metadata, and ours are pinned from that very metadata. So while our model is
    logged, a process that has not built the map gets one of just our requirements (each
    distribution mapped to itself), and then none again, so that other MLflow code in the
    process still builds the full one. A private MLflow variable: an MLflow without it is left
    alone (and scans, as before). The map is process-wide: a lock keeps two of our threads from
    swapping it at once; another library's thread logging a model *without* pinned requirements
    in that window would infer them from our short map (synth_platform starts no such thread)."""
    try:
        from mlflow.utils import requirements_utils as ru
    except ImportError:  # pragma: no cover - an MLflow that moved it
        yield
        return
    with _PACKAGE_MAP_LOCK:
        if getattr(ru, "_MODULES_TO_PACKAGES", False) is not None:
            yield  # built already in this process, or not MLflow's to build
            return
        names = [re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0] for r in pip_requirements]
        before = getattr(ru, "_PACKAGES_TO_MODULES", None)
        ru._MODULES_TO_PACKAGES = {n: [n] for n in names if n}
        try:
            yield
        finally:
            ru._MODULES_TO_PACKAGES, ru._PACKAGES_TO_MODULES = None, before


_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
_progress_bar_lock = threading.Lock()
_progress_bar_state = {"users": 0, "ours": False}


@contextlib.contextmanager
def _no_copy_progress_bar() -> Iterator[None]:
    """Logging a model, MLflow copies the synthesizer's file into the model folder through its
    artifact download, which draws a tqdm bar ("Downloading artifacts: 100%|...") on stderr:
    a line of noise in every fit step's log, for a local copy. Unless the user set
    ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` themselves, it is off while our models are logged
    (MLflow reads the variable when it draws the bar); overlapping calls in one process share
    the setting, and the last one out removes it."""
    state = _progress_bar_state
    with _progress_bar_lock:
        if state["users"] == 0:
            state["ours"] = _PROGRESS_BAR not in os.environ
            if state["ours"]:
                os.environ[_PROGRESS_BAR] = "false"
        state["users"] += 1
    try:
        yield
    finally:
        with _progress_bar_lock:
            state["users"] -= 1
            if state["users"] == 0 and state["ours"]:
                os.environ.pop(_PROGRESS_BAR, None)


@contextlib.contextmanager
def _table_run(
    *,
    tracking_uri: str,
    artifact_root: Path | None,
    table: str,
    run_name: str,
    params: dict[str, Any],
    tags: dict[str, str],
    metrics: dict[str, float],
) -> Iterator[tuple[Any, str]]:
    """An MLflow run in the table's experiment with its params, tags and metrics logged;
    yields ``(run, experiment id)`` for more logging inside."""
    with _tracking_uri(tracking_uri):
        client = _client(tracking_uri)
        exp_id = _experiment(
            client, f"synth_platform/{table}", artifact_root, tracking_uri=tracking_uri
        )
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.set_tags(tags)
            mlflow.log_metrics(metrics)
            yield run, exp_id


def log_declaration(
    *,
    tracking_uri: str,
    artifact_root: Path | None,
    table: str,
    params: dict[str, Any],
    tags: dict[str, str],
    metrics: dict[str, float],
) -> TrainingRun:
    """Record a table that is published without a model (a reference table): an MLflow run
    with the declaration as params and tags, which its gates attach their reports to."""
    with _table_run(
        tracking_uri=tracking_uri, artifact_root=artifact_root, table=table,
        run_name=f"{table}-reference", params=params, tags=tags, metrics=metrics,
    ) as (run, exp_id):  # fmt: skip
        pass
    return TrainingRun(
        run_id=run.info.run_id,
        experiment_id=exp_id,
        model_name=None,
        model_version=None,
        tracking_uri=tracking_uri,
    )


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """Point the fluent API at ``uri``. mlflow.set_tracking_uri also exports
    MLFLOW_TRACKING_URI, which MLflow's own default (any other MLflow code in this process, the
    user's included) reads: restore it afterwards, or that code would track into this store."""
    exported = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        if exported is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = exported


def log_run_artifact(
    *,
    tracking_uri: str,
    run_id: str,
    name: str,
    payload: dict | str,
    metrics: dict | None = None,
    artifact_path: str = "gates",
) -> str:
    """Attach a JSON/HTML report (and metrics) to an existing run; returns its artifact URI."""
    client = _client(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        text = payload if isinstance(payload, str) else json.dumps(payload, indent=2, default=str)
        path.write_text(text)
        client.log_artifact(run_id, str(path), artifact_path=artifact_path)
    if metrics:  # one request (one transaction in a SQL store), not one per metric
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    return f"{_run_info(tracking_uri, run_id).artifact_uri}/{artifact_path}/{name}"
