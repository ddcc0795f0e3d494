"""Beyond one machine, against real servers this module starts and stops: the Dagster instance on
PostgreSQL (dagster-postgres; Debian's server binaries, the module skips only when they are
absent) and MLflow on `mlflow server`.

One refresh of the example's `customers` twin runs on Dagster's multiprocess executor, which
needs a persistent instance (this one): every step runs in its own process, reports to Postgres
and logs to the tracking server. The README's Kubernetes configuration is read from the README
itself, so the docs cannot rot: its `dagster.yaml` block is the instance of that run, and its
run-config block is validated against dagster-k8s's config schema (no cluster is available).
"""

from __future__ import annotations

import contextlib
import json
import re
import textwrap
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml
from dagster_k8s import k8s_job_executor
from mlflow.tracking import MlflowClient

from synth_platform.lib.home import SynthHome
from synth_platform.lib.publish import connect, latest_version
from tests.example import REFRESH_JOB, example_definitions
from tests.servers import mlflow_server, postgres_cluster

REPO = Path(__file__).resolve().parents[2]
TABLE = "customers"  # one twin keeps the module fast; the whole demo is test_lifecycle's
SCALE = 0.5  # 500 customers: enough rows for a steady DCR share (README, "Small tables")


def k8s_blocks() -> tuple[dict, dict]:
    """The README's "Running on Kubernetes" YAML blocks: the instance's `dagster.yaml` and the
    run config of the k8s executor."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("#### Running on Kubernetes", 1)[1].split("\n## ", 1)[0]
    blocks = [
        yaml.safe_load(textwrap.dedent(body))
        for _, body in re.findall(r"^( *)```yaml\n(.*?)^\1```", section, re.M | re.S)
    ]
    instance, run_config = blocks
    return instance, run_config


def refresh_job(*, home: str, tracking_uri: str) -> dg.JobDefinition:
    """The example's refresh of one twin on the multiprocess executor. Every step process
    rebuilds it from these arguments (`dg.build_reconstructable_job`)."""
    defs = example_definitions(home=home, mlflow_tracking_uri=tracking_uri, select=[TABLE])
    return defs.resolve_job_def(REFRESH_JOB).with_executor_def(dg.multiprocess_executor)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """PostgreSQL with a `dagster` database, `mlflow server`, and a DAGSTER_HOME whose
    `dagster.yaml` is the README's, its `DAGSTER_PG_*` variables pointing at the server."""
    root = tmp_path_factory.mktemp("servers")
    with contextlib.ExitStack() as stack:
        try:
            pg = stack.enter_context(postgres_cluster(databases=("dagster",)))
        except FileNotFoundError as missing:
            pytest.skip(str(missing))
        tracking_uri = stack.enter_context(mlflow_server(root / "mlflow-server"))
        env = stack.enter_context(pytest.MonkeyPatch.context())
        for name, value in {
            "HOST": "127.0.0.1",  # over TCP, with a password, as a pod would connect
            "PORT": str(pg.port),
            "USER": pg.user,
            "PASSWORD": pg.password,
            "DB": "dagster",
        }.items():
            env.setenv(f"DAGSTER_PG_{name}", value)
        dagster_home = root / "dagster_home"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(k8s_blocks()[0]))
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(dagster_home)))
        yield {"pg": pg, "tracking_uri": tracking_uri, "instance": instance, "root": root}


@pytest.fixture(scope="module")
def refresh(servers):
    home = servers["root"] / "synth"
    job = dg.build_reconstructable_job(
        __name__,
        refresh_job.__name__,
        reconstructable_kwargs={"home": str(home), "tracking_uri": servers["tracking_uri"]},
    )
    run_config = {
        "ops": {"demo_bank_source": {"config": {"scale": SCALE, "seed": 7}}},
        "execution": {
            "config": {
                "max_concurrent": 2,
                # Step processes fork from one that imported the heavy libraries once.
                "start_method": {
                    "forkserver": {"preload_modules": [__name__, "synth_platform.preload"]}
                },
            }
        },
    }
    with dg.execute_job(job, instance=servers["instance"], run_config=run_config) as result:
        assert result.success
        yield {**servers, "run_id": result.run_id, "home": SynthHome(home)}


def test_the_run_and_its_materializations_are_stored_in_postgres(refresh):
    instance, run_id = refresh["instance"], refresh["run_id"]
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    [record] = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]))
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    published = instance.get_latest_materialization_event(dg.AssetKey(f"{TABLE}_published"))
    assert published is not None and published.run_id == run_id
    # Steps ran in processes of their own, each writing its events to the same server.
    step_pids = {
        e.dagster_event.pid
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        if e.step_key
    }
    assert len(step_pids) >= 5
    # ... and the rows are in PostgreSQL itself, not in a file beside DAGSTER_HOME.
    with psycopg2.connect(refresh["pg"].libpq("dagster")) as con, con.cursor() as cur:
        cur.execute("select status from runs where run_id = %s", (run_id,))
        assert cur.fetchall() == [("SUCCESS",)]
        cur.execute(
            "select asset_key from event_logs "
            "where run_id = %s and dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        )
        keys = {dg.AssetKey.from_db_string(k).to_user_string() for (k,) in cur.fetchall()}
    assert {f"{TABLE}_split", f"{TABLE}_synthesizer", f"{TABLE}_published"} <= keys
    assert not list((refresh["root"] / "dagster_home").rglob("*.db"))  # no SQLite storage


def test_mlflow_runs_models_and_artifacts_live_on_the_tracking_server(refresh):
    client = MlflowClient(tracking_uri=refresh["tracking_uri"])
    experiment = client.get_experiment_by_name(f"synth_platform/{TABLE}")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.tags["dagster.run_id"] == refresh["run_id"]
    # Stored by the server (--serve-artifacts), not in a folder of the machine that ran the step.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    gates = {a.path for a in client.list_artifacts(run.info.run_id, "gates")}
    assert {"gates/fidelity.json", "gates/privacy.json", "gates/report.html"} <= gates
    served = refresh["root"] / "mlflow-server" / "artifacts"
    assert any(served.rglob("report.html")) and any(served.rglob("MLmodel"))
    assert not any(p.is_file() for p in refresh["home"].mlflow_dir.rglob("*"))
    [version] = client.search_model_versions(f"name='synth_platform.{TABLE}'")
    assert version.run_id == run.info.run_id
    manifest = json.loads(
        (refresh["home"].public_dir / TABLE / "v000001" / "manifest.json").read_text()
    )
    assert (manifest["mlflow_run_id"], manifest["model_version"]) == (run.info.run_id, "1")


def test_the_published_twin_is_queryable(refresh):
    public = refresh["home"].public_dir
    assert latest_version(public, TABLE) == "v000001"
    with connect(public) as con:
        [(rows,)] = con.sql(
            f"select rows from releases where is_latest and table_name = '{TABLE}'"
        ).fetchall()
        assert rows > 0
        assert con.sql(f"select count(*) from {TABLE}").fetchall() == [(rows,)]


def test_the_readme_k8s_run_config_is_valid_for_dagster_k8s(tmp_path):
    """The documented run config against the real schema of `k8s_job_executor`, on the
    example's own refresh job; a misspelled field is refused, so this test can fail."""
    _, run_config = k8s_blocks()
    config = run_config["execution"]["config"]
    assert {"job_image", "max_concurrent", "env_vars", "volumes", "resources"} <= set(config)
    assert {v.split("=")[0] for v in config["env_vars"]} >= {"SYNTH_HOME", "MLFLOW_TRACKING_URI"}
    assert config["volumes"][0]["persistentVolumeClaim"]["claimName"]
    job = (
        example_definitions(home=tmp_path)
        .resolve_job_def(REFRESH_JOB)
        .with_executor_def(k8s_job_executor)
    )
    resolved = dg.validate_run_config(job, run_config)["execution"]["k8s"]  # the executor's name
    assert resolved["max_concurrent"] == 2
    assert resolved["volume_mounts"] == [{"name": "synth-home", "mountPath": "/synth"}]
    typo = {"execution": {"config": {**config, "max_concurent": 2}}}
    with pytest.raises(dg.DagsterInvalidConfigError, match="max_concurent"):
        dg.validate_run_config(job, typo)
