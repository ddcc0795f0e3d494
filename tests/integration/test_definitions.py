"""Snapshot of the asset graph: catches accidental renames of assets, groups and checks."""

import contextlib
import json
import os
import shutil
import subprocess
import sys

import dagster as dg
import pytest

from synth_platform.lib.errors import ProjectError
from tests.example import EXAMPLE_DBT, REFRESH_JOB, REPO, example_definitions


def test_asset_graph_has_the_lifecycle_per_opted_in_table(tmp_path):
    defs = example_definitions(home=tmp_path, cron="15 4 * * 1")
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    # The demo's tables are one group (dbt `relationships` tests): one group synthesizer.
    per_table = {f"{t}_{s}" for t in ("customers", "accounts", "transactions")
                 for s in ("split", "synthetic", "published")}  # fmt: skip
    per_table.add("customers_group_synthesizer")
    dbt_models = {"customers", "accounts", "transactions", "customer_summary",
                  "stg_bank__customers", "stg_bank__accounts", "stg_bank__transactions"}  # fmt: skip
    sources = {"bank/customers", "bank/accounts", "bank/transactions"}
    assert keys == per_table | dbt_models | sources
    checks = {c.name for c in graph.asset_check_keys}
    for t in ("customers", "accounts", "transactions"):
        assert {f"{t}_fidelity", f"{t}_privacy", f"{t}_validity"} <= checks
    for t in ("accounts", "transactions"):  # the children carry the group gates
        assert {f"{t}_integrity", f"{t}_cardinality", f"{t}_cross_table"} <= checks
    assert "customers_integrity" not in checks
    assert "unique_customers_customer_id" in checks  # dbt tests surface as checks
    spec = graph.get(dg.AssetKey("customers_split"))
    assert spec.group_name == "synthetic_customers"
    assert graph.get(dg.AssetKey("customers_split")).parent_keys == {dg.AssetKey("customers")}
    # A child's split follows its parent's (held-out families stay together).
    assert graph.get(dg.AssetKey("transactions_split")).parent_keys == {
        dg.AssetKey("transactions"),
        dg.AssetKey("accounts_split"),
    }
    # One step publishes the whole group: the three releases form one release set.
    published = graph.get(dg.AssetKey("accounts_published"))
    assert published.parent_keys == {dg.AssetKey(f"{t}_synthetic") for t in
                                     ("customers", "accounts", "transactions")}  # fmt: skip
    schedule = defs.resolve_schedule_def(f"{REFRESH_JOB}_schedule")
    assert schedule.cron_schedule == "15 4 * * 1"


def test_gate_checks_are_blocking():
    defs = example_definitions(home="/tmp/unused-synth-home")
    gates = [s for a in defs.asset_checks for s in a.check_specs]
    assert len(gates) == 9 + 6  # 3 per table, 3 group gates per child table
    for spec in gates:
        assert spec.blocking, spec.name


def test_the_example_loads_the_component_from_its_defs_yaml(tmp_path, monkeypatch):
    """The example project is a user of the plugin: DbtProjectComponent + the component."""
    monkeypatch.setenv("SYNTH_HOME", str(tmp_path))
    from bank_example.definitions import defs as example_defs

    defs = example_defs()
    graph = defs.resolve_asset_graph()
    # The twins hang off the dbt component's own model keys; dbt assets exist once.
    assert graph.get(dg.AssetKey("customers_split")).parent_keys == {dg.AssetKey("customers")}
    assert graph.get(dg.AssetKey("customers")).group_name == "warehouse"
    assert graph.get(dg.AssetKey("customers_published")).group_name == "synthetic_customers"
    resources = defs.resources
    assert resources["synth"].root == str(tmp_path)
    assert resources["synth"].expectations_dir == str(REPO / "expectations")
    assert resources["synth_mlflow"].tracking_uri.startswith(f"sqlite:///{tmp_path}")
    assert defs.resolve_job_def(REFRESH_JOB) is not None


def test_factory_selects_models_and_names_groups(tmp_path):
    defs = example_definitions(
        home=tmp_path, select=["customers", "accounts"], exclude=["accounts"],
        group_prefix="twin_", job_name="twins_only", cron=None,
    )  # fmt: skip
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert "customers_published" in keys and "accounts_published" not in keys
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("customers_published")).group_name == "twin_customers"
    assert defs.resolve_job_def("twins_only") is not None
    assert not list(defs.schedules or [])


def test_every_step_of_the_refresh_job_has_its_kinds_priority(tmp_path):
    # Under the multiprocess executor Dagster starts the ready step of highest `dagster/priority`
    # first: splits, fits and samples before gates, the longest gate first, publication last.
    from synth_platform.defs.tables import STEP_PRIORITY

    for select in (None, ["customers"]):  # the example's group; one table alone
        defs = example_definitions(home=tmp_path / str(bool(select)), select=select)
        job = defs.resolve_job_def(REFRESH_JOB)
        seen = set()
        for node in job.nodes:
            if node.name in ("demo_bank_source", "warehouse_dbt_models"):
                continue
            kind = node.name.rsplit("_", 1)[-1]
            kind = {"table": "cross_table"}.get(kind, kind)
            assert kind in STEP_PRIORITY, node.name
            assert node.definition.tags.get("dagster/priority") == str(STEP_PRIORITY[kind]), (
                node.name
            )
            seen.add(kind)
        assert seen == set(STEP_PRIORITY) - (
            set() if select is None else {"integrity", "cardinality", "cross_table"}
        ), seen


def test_refresh_job_leaves_the_dbt_models_to_their_own_job_unless_asked(tmp_path):
    twins = {"customers", "accounts", "transactions"}

    def steps(defs: dg.Definitions) -> set[str]:
        job = defs.resolve_job_def(REFRESH_JOB)
        return {k.to_user_string() for k in job.asset_layer.selected_asset_keys}

    default = steps(example_definitions(home=tmp_path, refresh_upstream=False))
    assert {f"{t}_{s}" for t in twins for s in ("split", "synthetic", "published")} <= default
    assert not default & (twins | {"bank/customers", "stg_bank__customers"})  # no dbt, no source
    upstream = steps(example_definitions(home=tmp_path, refresh_upstream=True))
    assert (twins | {"bank/customers", "stg_bank__customers"}) | default <= upstream


def forkserver_refresh_job() -> dg.JobDefinition:
    """The example's refresh job with `job_executor: forkserver` (`dg.reconstructable`: by
    module, as a code location loaded from a module is)."""
    defs = example_definitions(home=os.environ["SYNTH_HOME"], job_executor="forkserver")
    return defs.resolve_job_def(REFRESH_JOB)


def test_the_refresh_job_can_fork_its_steps_from_a_preloaded_server(tmp_path, monkeypatch):
    """`job_executor: forkserver` gives the refresh job Dagster's multiprocess executor with
    its steps forked from a server that preloaded the job's own module (what Dagster preloads
    by default: a `built_once_per_forkserver` definitions function there is built once) and
    `synth_platform.preload`; by default the job takes the Definitions' executor (the
    example's tests: in-process)."""
    default = example_definitions(home=tmp_path).resolve_job_def(REFRESH_JOB)
    assert default.executor_def.name == "in_process"
    monkeypatch.setenv("SYNTH_HOME", str(tmp_path))
    job = forkserver_refresh_job()
    assert job.executor_def.name == "synth_multiprocess_preloaded"
    recon = dg.reconstructable(forkserver_refresh_job)

    def created(run_config: dict):
        config = dg.validate_run_config(job, {"execution": {"config": run_config}})
        init = dg.InitExecutorContext(
            job=recon, executor_def=job.executor_def, instance=dg.DagsterInstance.ephemeral(),
            executor_config=config["execution"]["synth_multiprocess_preloaded"],
        )  # fmt: skip
        executor = job.executor_def.executor_creation_fn(init)
        return executor._start_method, executor._explicit_forkserver_preload  # noqa: SLF001

    assert created({}) == ("forkserver", [__name__, "synth_platform.preload"])
    listed = {"start_method": {"forkserver": {"preload_modules": ["mine"]}}}
    assert created(listed) == ("forkserver", ["mine"])  # the run config's list, as it is
    assert created({"start_method": {"spawn": {}}})[0] == "spawn"


def test_factory_names_an_unknown_selected_model(tmp_path):
    with pytest.raises(ProjectError, match="'nope'.*not an opted-in dbt model"):
        example_definitions(home=tmp_path, select=["nope"])


@contextlib.contextmanager
def _component_in_a_sandbox(tmp_path, **attributes):
    """The component over a copy of the example's dbt project, in a `dg` defs-folder sandbox:
    yields the sandbox, the component's folder and its definitions."""
    from dagster.components.testing import create_defs_folder_sandbox

    from synth_platform import SyntheticTwinsComponent

    project = tmp_path / "dbt"
    shutil.copytree(EXAMPLE_DBT, project, ignore=shutil.ignore_patterns("target", "logs"))
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=SyntheticTwinsComponent,
            defs_yaml_contents={
                "type": "synth_platform.SyntheticTwinsComponent",
                "attributes": {"dbt_project": str(project), **attributes},
            },
        )
        with sandbox.build_all_defs() as defs:
            yield sandbox, defs_path, defs


def test_component_in_a_sandbox_puts_state_under_the_project_root(tmp_path, monkeypatch):
    """With only `dbt_project` set, every piece of state lands in <project root>/.synth."""
    monkeypatch.delenv("SYNTH_HOME", raising=False)
    monkeypatch.delenv("SYNTH_PUBLIC_DIR", raising=False)
    with _component_in_a_sandbox(tmp_path) as (sandbox, defs_path, defs):
        root = sandbox.project_root
        assert defs.resources["synth"].root == str((root / ".synth").resolve())
        assert defs.resources["synth"].public_dir == str((root / ".synth" / "public").resolve())
        split = defs.resolve_asset_graph().get(dg.AssetKey("transactions_split"))
        assert dg.AssetKey("transactions") in split.parent_keys
        assert defs_path.exists()


def test_the_public_store_is_synth_public_dir_when_set_and_no_public_dir_is_given(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("SYNTH_PUBLIC_DIR", str(tmp_path / "mounted"))
    defs = example_definitions(home=tmp_path / "home")
    assert defs.resources["synth"].public_dir == str((tmp_path / "mounted").resolve())
    given = example_definitions(home=tmp_path / "home", public_dir=tmp_path / "given")
    assert given.resources["synth"].public_dir == str((tmp_path / "given").resolve())


def test_the_components_warehouse_attachments_resolve_beside_its_defs_yaml(tmp_path):
    attach = [
        {"path": "data/raw.duckdb", "alias": "raw"},
        {"path": "md:shared", "alias": "shared"},  # not a local path: kept as given
    ]
    with _component_in_a_sandbox(
        tmp_path, home=str(tmp_path / "home"), warehouse_path="data/warehouse.duckdb",
        warehouse_attach=attach,
    ) as (_, defs_path, defs):  # fmt: skip
        warehouse = defs.resources["synth_warehouse"]
    assert warehouse.path == str((defs_path / "data" / "warehouse.duckdb").resolve())
    assert [(a.path, a.alias) for a in warehouse.attach] == [
        (str((defs_path / "data" / "raw.duckdb").resolve()), "raw"),
        ("md:shared", "shared"),
    ]


def test_the_scaffolded_comments_list_every_optional_attribute_at_its_default():
    import yaml

    from synth_platform.component import SCAFFOLD_NOTES, SyntheticTwinsComponent, scaffold_comments

    assert set(SCAFFOLD_NOTES) == set(SyntheticTwinsComponent.model_fields) - {"dbt_project"}
    shown = {}
    for line in scaffold_comments().splitlines()[1:]:
        setting, _, note = line.removeprefix("  # ").partition("  # ")
        shown.update(yaml.safe_load(setting))
        assert note
    defaults = {
        name: field.get_default(call_default_factory=True)
        for name, field in SyntheticTwinsComponent.model_fields.items()
        if name != "dbt_project"
    }
    assert shown == defaults
    # Uncommented, they are a valid component as they stand.
    SyntheticTwinsComponent.model_validate({"dbt_project": "dbt", **shown})


def test_twins_carry_code_versions_and_opt_in_declarative_automation(tmp_path):
    ours = [f"{t}_{s}" for t in ("customers", "accounts", "transactions")
            for s in ("split", "synthetic", "published")] + ["customers_group_synthesizer"]  # fmt: skip
    graph = example_definitions(home=tmp_path).resolve_asset_graph()
    for key in ours:
        node = graph.get(dg.AssetKey(key))
        assert node.code_version, key  # the UI marks a twin stale when spec or code changes
        assert node.automation_condition is None, key  # the job and its schedule run it
    automated = example_definitions(home=tmp_path, automation=True).resolve_asset_graph()
    for key in ours:
        condition = automated.get(dg.AssetKey(key)).automation_condition
        assert condition is not None and "eager" in condition.get_label().lower(), key


#: Libraries the steps use and loading the definitions must not import (each step process of
#: the multiprocess executor loads the definitions again; `synth_platform.preload` has them).
STEP_LIBRARIES = ("pandas", "numpy", "scipy", "sklearn", "sdv", "sdmetrics", "torch", "mlflow",
                  "great_expectations", "matplotlib", "synth_platform.lib.lifecycle")  # fmt: skip


def test_building_the_definitions_imports_none_of_the_step_libraries(tmp_path):
    code = (
        "import sys\n"
        "from synth_platform import build_synthetic_definitions\n"
        f"defs = build_synthetic_definitions(dbt_project={str(EXAMPLE_DBT)!r}, "
        f"home={str(tmp_path)!r})\n"
        f"defs.resolve_job_def({REFRESH_JOB!r})\n"
        f"print(sorted(m for m in {STEP_LIBRARIES!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


#: What a refresh with nothing changed does not need: it reads and fingerprints each source and
#: compares refresh keys (`split_table`, `table_refresh_inputs`, `refresh.unchanged_*`).
FIT_AND_GATE_LIBRARIES = ("scipy", "sklearn", "numba", "sdv", "sdmetrics", "torch", "mlflow",
                          "great_expectations", "matplotlib", "synth_platform.lib.evaluation",
                          "synth_platform.lib.tracking", "synth_platform.lib.group")  # fmt: skip


def test_what_a_refresh_with_nothing_changed_runs_imports_none_of_the_fit_and_gate_libraries():
    # The split and synthesizer steps import these modules before they find the keys unchanged
    # (the group's `synth_platform.lib.group` only after): 2 s of imports in the first step.
    code = (
        "import sys\n"
        "from synth_platform.lib import lifecycle, refresh\n"
        "lifecycle.split_table, lifecycle.table_refresh_inputs, refresh.unchanged_group\n"
        f"print(sorted(m for m in {FIT_AND_GATE_LIBRARIES!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_steps_forked_from_a_preloading_server_start_with_the_libraries_and_frozen_objects(
    tmp_path,
):
    # As Dagster's multiprocess executor does with `preload_modules: [synth_platform.preload]`:
    # the forked step has the step libraries, and the server froze its objects before forking,
    # so the step's garbage collector does not walk (and copy) them (0.56 s a step before).
    code = (
        "import gc, json, multiprocessing, sys\n"
        "def child(queue):\n"
        "    queue.put(json.dumps({'missing': sorted(m for m in ('great_expectations', "
        "'sdmetrics', 'sklearn.tree', 'mlflow.store.tracking.sqlalchemy_store', "
        "'synth_platform.lib.group') if m not in sys.modules), "
        "'frozen': gc.get_freeze_count()}))\n"
        "if __name__ == '__main__':\n"
        "    ctx = multiprocessing.get_context('forkserver')\n"
        "    ctx.set_forkserver_preload(['synth_platform.preload'])\n"
        "    queue = ctx.Queue()\n"
        "    p = ctx.Process(target=child, args=(queue,))\n"
        "    p.start()\n"
        "    print(queue.get(timeout=120))\n"
        "    p.join()\n"
        "    print(json.dumps({'here': gc.get_freeze_count()}))\n"
    )
    script = tmp_path / "preloaded.py"
    script.write_text(code)
    out = subprocess.run(
        [sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
    ).stdout  # fmt: skip
    step, here = (json.loads(line) for line in out.strip().splitlines()[-2:])
    assert step["missing"] == []
    assert step["frozen"] > 100_000  # the preloaded libraries' objects
    assert here["here"] == 0  # only a forkserver freezes: not the process that started it


def test_processes_parsing_one_dbt_project_at_once_each_read_a_whole_manifest(tmp_path):
    # A code server and a run worker (or two test workers) load the definitions at once: each
    # parses in a folder of its own and renames the manifest in, never reading a torn one.

    project = tmp_path / "dbt_project"
    shutil.copytree(EXAMPLE_DBT, project, ignore=shutil.ignore_patterns("target", "logs"))
    script = (
        "import json, sys; from dagster_dbt import DbtProject\n"
        "from synth_platform.defs.build import ensure_manifest\n"
        "m = json.loads(ensure_manifest(DbtProject(sys.argv[1])).read_text())\n"
        "print(sorted(n.split('.')[-1] for n in m['nodes'] if n.startswith('model.')))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(project)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=REPO)
        for _ in range(2)
    ]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    models = {out.strip().splitlines()[-1] for out, _ in outs}
    assert models == {
        "['accounts', 'customer_summary', 'customers', 'stg_bank__accounts', "
        "'stg_bank__customers', 'stg_bank__transactions', 'transactions']"
    }
    target = project / "target"
    assert json.loads((target / "manifest.json").read_text())["nodes"]
    assert not [p for p in target.iterdir() if p.name.startswith(".parse-")]  # cleaned up
