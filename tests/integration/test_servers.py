"""Beyond one machine, against real servers this module starts and stops: the Dagster instance on
PostgreSQL (dagster-postgres; Debian's server binaries, the module skips only when they are
absent) and MLflow on `mlflow server`.

One refresh of the example's `customers` twin runs on Dagster's multiprocess executor, which
needs a persistent instance (this one): every step runs in its own process, reports to Postgres
and logs to the tracking server. The README's Kubernetes configuration is read from the README
itself, so the docs cannot rot: its `dagster.yaml` block is the instance of that run, and its
run-config block is validated against dagster-k8s's config schema and then run by dagster-k8s's
own executor, whose Jobs a stand-in for the cluster (`Kubelet`) runs as local processes (no
cluster is available).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import textwrap
import time
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


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


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
    """The example's refresh of one twin on the multiprocess executor (`job_executor:
    forkserver`). Every step process rebuilds it from these arguments
    (`dg.build_reconstructable_job`)."""
    defs = example_definitions(
        home=home, mlflow_tracking_uri=tracking_uri, select=[TABLE], job_executor="forkserver"
    )
    return defs.resolve_job_def(REFRESH_JOB)


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
        instance_config = k8s_blocks()[0]
        # Outside a cluster the run launcher reads a kubeconfig (one pointing nowhere: nothing
        # here calls the API through it) instead of a pod's service account.
        kubeconfig = root / "kubeconfig"
        kubeconfig.write_text(KUBECONFIG)
        instance_config["run_launcher"]["config"].update(
            load_incluster_config=False, kubeconfig_file=str(kubeconfig)
        )
        (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance_config))
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


# ------------------------------------------------------------------ the k8s executor, podless


def refresh_job_in_pods() -> dg.JobDefinition:
    """The example's refresh of one twin on dagster-k8s's executor. As in a pod, the home and
    the tracking server come from the environment (the README's `env_vars`)."""
    defs = example_definitions(
        home=os.environ["SYNTH_HOME"],
        mlflow_tracking_uri=os.environ["MLFLOW_TRACKING_URI"],
        select=[TABLE],
    )
    return defs.resolve_job_def(REFRESH_JOB).with_executor_def(k8s_job_executor)


class Kubelet:
    """Kubernetes' batch API as the k8s executor calls it, with every Job run as a local process
    instead of a pod: its container's `args`, its `env` and the Secrets of its `envFrom`, its
    volumes mounted by rewriting the mount path in the environment to the claim's directory.
    The image is this environment (this Python, this project on `PYTHONPATH`)."""

    def __init__(self, *, secrets: dict[str, dict[str, str]], claims: dict[str, Path]) -> None:
        self.secrets, self.claims = secrets, claims
        self.jobs: dict[str, tuple[subprocess.Popen, object, dict[str, str]]] = {}
        self.deadline = time.monotonic() + 600

    def create_namespaced_job(self, body, namespace, **_):  # noqa: ANN001, ANN201
        pod = body.spec.template.spec
        [container] = pod.containers
        # The image: this Python and this project (the job's module, `tests.integration...`).
        env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        env["PYTHONPATH"] = str(REPO)
        env.update(GX_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", MLFLOW_DISABLE_TELEMETRY="true")
        for source in container.env_from or []:
            env.update(self.secrets[source.secret_ref.name])
        env.update({e.name: e.value for e in container.env or []})
        volumes = {v.name: v.persistent_volume_claim.claim_name for v in pod.volumes or []}
        for mount in container.volume_mounts or []:
            host = str(self.claims[volumes[mount.name]])
            env = {
                k: host + v[len(mount.mount_path) :]
                if v == mount.mount_path or v.startswith(mount.mount_path + "/")
                else v
                for k, v in env.items()
            }
        proc = subprocess.Popen([*(container.command or []), *container.args], env=env, cwd=REPO)
        self.jobs[body.metadata.name] = (proc, body, env)

    def read_namespaced_job_status(self, name, namespace, **_):  # noqa: ANN001, ANN201
        from kubernetes.client import V1Job, V1JobStatus

        if name not in self.jobs:
            return V1Job(status=None)
        proc = self.jobs[name][0]
        code = proc.poll()
        if code is None and time.monotonic() > self.deadline:  # a hung step fails, not the suite
            proc.kill()
            code = proc.wait()
        return V1Job(
            status=V1JobStatus(
                active=1 if code is None else None,
                succeeded=1 if code == 0 else None,
                failed=1 if code not in (None, 0) else None,
            )
        )

    def delete_namespaced_job(self, name, namespace, **_):  # noqa: ANN001, ANN201
        self.jobs[name][0].kill()

    def list_namespaced_pod(self, namespace, **_):  # noqa: ANN001, ANN201
        from kubernetes.client import V1PodList

        return V1PodList(items=[])  # (dagster-k8s lists a Job's pods before deleting it)

    def stop(self) -> None:
        """Kill every process still running (a failed or interrupted test)."""
        for proc, _, _ in self.jobs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_the_readme_k8s_executor_runs_every_step_as_a_kubernetes_job(
    servers, tmp_path, monkeypatch, request
):
    """dagster-k8s's own executor and step handler, with the README's run config, build a Job
    per step; each Job's container command and environment, run as a process, executes its
    step against the README's Postgres instance, the MLflow server and the shared volume.
    What only a cluster adds (scheduling, the image, a ReadWriteMany volume) is not tested."""
    from dagster_k8s.client import DagsterKubernetesClient

    _, run_config = k8s_blocks()
    config = run_config["execution"]["config"]
    volume = tmp_path / "synth-home"  # the PersistentVolumeClaim's directory
    secret = {k: v for k, v in os.environ.items() if k.startswith("DAGSTER_PG_")}
    kubelet = Kubelet(secrets={"dagster-postgres": secret}, claims={"synth-home": volume})
    request.addfinalizer(kubelet.stop)
    monkeypatch.setattr(
        DagsterKubernetesClient, "production_client",
        staticmethod(lambda **_: DagsterKubernetesClient(
            batch_api=kubelet, core_api=kubelet, logger=lambda *a: None, sleeper=time.sleep,
            timer=time.time,
        )),
    )  # fmt: skip
    # The run worker sees the volume and the tracking server as the pods do; the server's
    # in-cluster address becomes this test's server.
    monkeypatch.setenv("SYNTH_HOME", str(volume))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", servers["tracking_uri"])
    env_vars = [
        f"MLFLOW_TRACKING_URI={servers['tracking_uri']}" if v.startswith("MLFLOW_") else v
        for v in config["env_vars"]
    ]
    run_config = {
        "ops": {"demo_bank_source": {"config": {"scale": SCALE, "seed": 7}}},
        "execution": {"config": {**config, "env_vars": env_vars}},
    }
    job = dg.build_reconstructable_job(__name__, refresh_job_in_pods.__name__)
    with dg.execute_job(job, instance=servers["instance"], run_config=run_config) as result:
        assert result.success
        steps = {e.step_key for e in result.get_step_success_events()}
    # One Job per step, from the README's image, with its resources and the Postgres Secret.
    assert set(kubelet.jobs) and len(kubelet.jobs) == len(steps) >= 7
    for proc, body, env in kubelet.jobs.values():
        [container] = body.spec.template.spec.containers
        assert container.image == config["job_image"]
        assert container.resources.requests == config["resources"]["requests"]
        assert env["SYNTH_HOME"] == str(volume) and env["DAGSTER_PG_HOST"] == "127.0.0.1"
        assert proc.wait(timeout=60) == 0  # the last may still be exiting
    step_pids = {
        e.dagster_event.pid
        for e in servers["instance"].all_logs(
            result.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS
        )
    }
    assert len(step_pids) == len(steps)  # each step in a process of its own
    assert latest_version(SynthHome(volume).public_dir, TABLE) == "v000001"
    experiment = MlflowClient(servers["tracking_uri"]).get_experiment_by_name(
        f"synth_platform/{TABLE}"
    )
    runs = MlflowClient(servers["tracking_uri"]).search_runs([experiment.experiment_id])
    assert result.run_id in {r.data.tags.get("dagster.run_id") for r in runs}
