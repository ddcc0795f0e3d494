"""A two-table group on HMA, end to end (the demo's three-table chain runs independent)."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from synth_platform.lib.home import SynthHome
from synth_platform.lib.publish import connect
from tests.example import EXAMPLE_DBT as DBT_PROJECT_DIR
from tests.example import REFRESH_JOB, example_definitions

SCALE = 0.2  # 200 customers, ~360 accounts


@pytest.fixture(scope="module")
def hma(tmp_path_factory):
    root = tmp_path_factory.mktemp("hma")
    project = root / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    yml = project / "models" / "marts" / "transactions.yml"
    doc = yaml.safe_load(yml.read_text())
    # Dropping the transactions -> accounts key leaves customers -> accounts: a group HMA takes.
    doc["models"][0]["config"]["meta"]["synthetic"]["relationships"] = []
    yml.write_text(yaml.safe_dump(doc))
    yml = project / "models" / "marts" / "accounts.yml"
    doc = yaml.safe_load(yml.read_text())
    # `auto` would choose independent (the tables use the default `cart` synthesizer; HMA's
    # per-table models are Gaussian copulas): ask for HMA, with the thresholds its measured demo quality meets (README: HMA gives
    # cardinality ~0.76, accounts fidelity ~0.63 and a balance shape of ~0.43 here, against
    # 0.99, 0.91 and 0.8+ with the independent strategy).
    doc["models"][0]["config"]["meta"]["synthetic"].update(
        {
            "multi_table": "hma",
            "thresholds": {"fidelity": 0.5, "worst_column": 0.3, "cardinality": 0.6},
        }
    )
    yml.write_text(yaml.safe_dump(doc))
    defs = example_definitions(home=root, project_dir=project, expectations_dir=root / "exp")
    job = defs.resolve_job_def(REFRESH_JOB)
    result = job.execute_in_process(
        run_config={"ops": {"demo_bank_source": {"config": {"scale": SCALE, "seed": 3}}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    return {"root": root, "home": SynthHome(root), "result": result}


def test_hma_group_publishes_with_resolving_keys(hma):
    result, home = hma["result"], hma["home"]
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    failed = [(k, e.metadata["failures"].value) for k, e in evals.items() if not e.passed]
    assert result.success, failed
    for kind in ("integrity", "cardinality", "cross_table"):
        assert evals[f"accounts_{kind}"].passed, kind
    mats = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    synth = mats["customers_group_synthesizer"]
    assert synth["strategy"].value == "hma"
    assert synth["strategy_reason"].value == "requested"
    with connect(home.public_dir) as con:
        orphans = con.sql(
            "select count(*) from accounts a anti join customers c using (customer_id)"
        ).fetchall()[0][0]
        assert orphans == 0
        sets = con.sql(
            "select count(distinct release_set) from releases "
            "where is_latest and table_name in ('customers', 'accounts')"
        )
        assert sets.fetchall()[0][0] == 1
        # HMA's made-up keys (`sdv-id-...`) are replaced by keys in the real format, mapped
        # through to the children, and none of them is a real customer's.
        ids = con.sql("select customer_id from customers").df()["customer_id"]
    real_ids = pd.concat(
        pd.read_parquet(p, columns=["customer_id"])["customer_id"]
        for p in (home.private_dir / "customers").glob("*.parquet")
        if p.stem in ("train", "holdout")
    )
    assert pd.api.types.is_integer_dtype(ids) and ids.is_unique
    assert not ids.isin(real_ids).any()
    manifest = json.loads((home.public_dir / "accounts" / "v000001" / "manifest.json").read_text())
    assert manifest["synthesizer"] == "hma"
    assert manifest["synthesis_group"]["strategy"] == "hma"
    # One MLflow run for the whole group, with the HMA registered as a model version.
    client = MlflowClient(tracking_uri=home.mlflow_tracking_uri)
    run = client.get_run(manifest["mlflow_run_id"])
    assert run.data.params["synthesizer"] == "hma"
    assert run.data.tags["synth_platform.tables"] == "customers,accounts"
    versions = client.search_model_versions("name='synth_platform.group.customers'")
    assert [str(v.version) for v in versions] == [manifest["model_version"]]


def _refresh(root, project):
    """The refresh job of ``project`` (definitions built afresh: a .yml edit is picked up)."""
    defs = example_definitions(home=root, project_dir=project, expectations_dir=root / "exp")
    return defs.resolve_job_def(REFRESH_JOB).execute_in_process(
        run_config={"ops": {"demo_bank_source": {"config": {"scale": SCALE, "seed": 3}}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _steps(result, event: str) -> set[str]:
    return {e.step_key for e in result.all_events if e.event_type_value == event}


def _latest(home) -> dict[str, str]:
    with connect(home.public_dir) as con:
        return dict(con.sql("select table_name, version from releases where is_latest").fetchall())


def test_refresh_skips_unchanged_tables_and_refreshes_exactly_the_changed_ones(hma):
    root, home, project = hma["root"], hma["home"], hma["root"] / "dbt_project"
    assert hma["result"].success
    first = _latest(home)
    assert first == {"customers": "v000001", "accounts": "v000001", "transactions": "v000001"}
    runs = len(MlflowClient(home.mlflow_tracking_uri).search_runs(
        [e.experiment_id for e in MlflowClient(home.mlflow_tracking_uri).search_experiments()]
    ))  # fmt: skip

    # 1. Nothing changed: no fit, no sample, no release; the UI says why.
    again = _refresh(root, project)
    assert again.success
    skipped = _steps(again, "STEP_SKIPPED")
    assert {"transactions_synthetic", "customers_group_synthetic"} <= skipped
    assert not any(s.endswith(("_synthetic", "_published")) for s in _steps(again, "STEP_SUCCESS"))
    materialized = {e.asset_key.to_user_string() for e in again.get_asset_materialization_events()}
    assert not any(k.endswith(("_synthesizer", "_synthetic", "_published")) for k in materialized)
    observed = {
        e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata
        for e in again.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }
    assert "skipped" in observed["transactions_synthesizer"]["refresh"].value
    assert "customers" in observed["customers_group_synthesizer"]["unchanged"].value
    assert _latest(home) == first
    client = MlflowClient(home.mlflow_tracking_uri)
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == runs

    # 2. One standalone table's meta changes: that table alone refreshes.
    yml = project / "models" / "marts" / "transactions.yml"
    doc = yaml.safe_load(yml.read_text())
    doc["models"][0]["config"]["meta"]["synthetic"].setdefault("thresholds", {})["nndr"] = 0.05
    yml.write_text(yaml.safe_dump(doc))
    meta_changed = _refresh(root, project)
    assert meta_changed.success
    assert _latest(home) == {**first, "transactions": "v000002"}
    assert "customers_group_synthetic" in _steps(meta_changed, "STEP_SKIPPED")

    # 3. One group table's source changes (its dbt model rounds balances): its group refreshes.
    sql = project / "models" / "marts" / "accounts.sql"
    sql.write_text(f"select * replace (round(balance, -1) as balance) from ({sql.read_text()})")
    source_changed = _refresh(root, project)
    assert source_changed.success
    assert _latest(home) == {
        "customers": "v000002",
        "accounts": "v000002",
        "transactions": "v000002",
    }
    assert "transactions_synthetic" in _steps(source_changed, "STEP_SKIPPED")
