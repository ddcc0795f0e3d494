"""End to end on a small demo: real DuckDB, real dbt, real MLflow store, real GE suites."""

from __future__ import annotations

import json
import shutil

import cloudpickle
import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from mlflow.tracking import MlflowClient

from synth_platform.lib import lifecycle
from synth_platform.lib.errors import GateFailedError, SpecError
from synth_platform.lib.home import SynthHome
from synth_platform.lib.publish import connect, latest_version
from tests.example import EXAMPLE_DBT as DBT_PROJECT_DIR
from tests.example import REFRESH_JOB, example_definitions
from tests.planted import LeakySynthesizer, NoiseSynthesizer

TABLES = ("accounts", "customers", "transactions")
SCALE = 0.5  # 500 customers, ~900 accounts, ~7.5k transactions (at 300 the DCR share of
# 57 holdout rows is too noisy for any synthesizer that learns from its training rows: README)
# The demo's tables form one group (dbt `relationships` tests): its steps run together.
GROUP_STEPS = [f"{t}_{step}" for t in TABLES for step in ("synthetic", "published")]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("home")
    defs = example_definitions(home=root, expectations_dir=root / "expectations")
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def(REFRESH_JOB).execute_in_process(
        run_config={"ops": {"demo_bank_source": {"config": {"scale": SCALE, "seed": 7}}}},
        instance=instance,
        raise_on_error=False,
    )
    return {"root": root, "home": SynthHome(root), "defs": defs, "result": result,
            "instance": instance}  # fmt: skip


def _run(defs, keys, *, raise_on_error=False):
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        asset_selection=[dg.AssetKey(k) for k in keys],
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def test_every_opted_in_table_is_published_with_all_checks_passed(env):
    result = env["result"]
    assert result.success
    evals = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    for t in TABLES:
        for kind in ("fidelity", "privacy", "validity"):
            assert evals[f"{t}_{kind}"] is True, (t, kind)
        assert latest_version(env["home"].public_dir, t) == "v000001"
    # Each fidelity check shows SDMetrics' plain QualityReport beside the gate, and why.
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    for t in TABLES:
        shown = checks[f"{t}_fidelity"].metadata
        assert 0 < shown["sdmetrics_quality_report"].value <= 1
        assert 0 < shown["sdmetrics_quality_report_gate_columns"].value <= 1
        why = shown["vs_sdmetrics_quality_report"].value
        assert "SDMetrics QualityReport, plain" in why and "binning" in why
    assert "faked PII" in checks["customers_fidelity"].metadata["vs_sdmetrics_quality_report"].value
    transactions = checks["transactions_fidelity"].metadata
    assert transactions["utility_real_score"].value > 0  # beside the ratio
    # Evaluating logs its progress to the run, rows done, percent and rate: transactions
    # (target `channel`) compares its real and synthetic rows twice (our scores, SDMetrics'),
    # then fits a model on real and one on synthetic rows, each scoring the holdout.
    logged = [e.message or "" for e in env["instance"].all_logs(result.run_id)]
    home = env["home"]
    n = {p: len(pd.read_parquet(home.table_dir("transactions") / f"{p}.parquet"))
         for p in ("train", "holdout", "candidate")}  # fmt: skip
    compared = 2 * (n["train"] + n["holdout"] + n["candidate"])
    utility = n["train"] + n["candidate"] + 2 * n["holdout"]
    for stage, rows in (("scores", compared), ("utility (channel)", utility)):
        line = f"fidelity transactions: {stage}: {rows:,} / {rows:,} rows (100%), "
        assert [m for m in logged if m.startswith(line) and "rows/s" in m], (line, logged)
    with connect(env["home"].public_dir) as con:
        counts = dict(con.sql("select table_name, rows from releases where is_latest").fetchall())
        assert set(counts) == set(TABLES)
        assert con.sql("select count(*) from customers").fetchall()[0][0] == counts["customers"]


def test_group_keys_resolve_and_cardinality_passes(env):
    evals = {e.check_name: e for e in env["result"].get_asset_check_evaluations()}
    for child in ("accounts", "transactions"):
        for kind in ("integrity", "cardinality", "cross_table"):
            assert evals[f"{child}_{kind}"].passed is True, (child, kind)
        card = evals[f"{child}_cardinality"].metadata
        assert card["score"].value >= card["threshold"].value == 0.8
        assert evals[f"{child}_integrity"].metadata["score"].value == 1.0
    with connect(env["home"].public_dir) as con:
        orphans = con.sql(
            "select (select count(*) from accounts a anti join customers c using (customer_id)),"
            " (select count(*) from transactions t anti join accounts a using (account_id))"
        ).fetchall()[0]
        assert orphans == (0, 0)
        # Children per parent follow the real distribution (1 - KS >= threshold above), and
        # every table of the group came in one release set.
        sets = con.sql(
            "select count(distinct release_set) from releases "
            "where is_latest and table_name in ('customers', 'accounts', 'transactions')"
        ).fetchall()[0][0]
        assert sets == 1
    manifest = json.loads(
        (env["home"].public_dir / "transactions" / "v000001" / "manifest.json").read_text()
    )
    assert manifest["synthesis_group"]["strategy"] == "independent"  # HMA refuses a 3-table chain
    assert manifest["synthesis_group"]["relationships"] == [
        "accounts.customer_id->customers.customer_id",
        "transactions.account_id->accounts.account_id",
    ]
    assert manifest["group_scores"]["integrity"]["metrics"]["orphans__account_id"] == 0


def test_group_metadata_is_saved_and_shown(env):
    home = env["home"]
    saved = json.loads(
        (home.private_dir / "_groups" / "customers" / "sdv_metadata.json").read_text()
    )
    assert saved["relationships"][0]["child_foreign_key"] == "customer_id"
    mats = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in env["result"].get_asset_materialization_events()
    }
    shown = mats["customers_group_synthesizer"]
    assert shown["sdv_multi_table_metadata"].value == saved
    assert shown["strategy"].value == "independent"
    client = MlflowClient(tracking_uri=home.mlflow_tracking_uri)
    run_id = shown["mlflow_runs"].value["accounts"]
    assert {a.path for a in client.list_artifacts(run_id, "group")} >= {
        "group/sdv_multi_table_metadata.json"
    }


def test_assets_carry_the_dagster_conventions_of_an_integration(env):
    """Column schemas with dbt descriptions and faked PII, http links into MLflow, MLflow runs
    tagged with the Dagster run and asset, experiments typed for model training, and no
    candidate rows shown before the gates pass."""
    result, home = env["result"], env["home"]
    mats = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    for key in ("customers_synthetic", "customers_published"):
        schema = mats[key]["dagster/column_schema"].value
        cols = {c.name: c for c in schema.columns}
        assert cols["email"].tags == {
            "synth_platform/pii": "faked",
            "synth_platform/faker": "email",
        }
        assert cols["birth_date"].tags["synth_platform/pii"] == "faked"
        assert cols["segment"].tags == {}
        assert cols["email"].description == "Email address, unique per customer."
    assert "preview" not in mats["customers_synthetic"]  # not shown before the gates pass
    assert "preview" in mats["customers_published"]
    spec = env["defs"].resolve_asset_graph().get(dg.AssetKey("customers_published"))
    assert "dagster/column_schema" in spec.metadata  # also before anything ran
    links = [mats["customers_published"]["mlflow_run"].value]
    for e in result.get_asset_check_evaluations():
        for name in ("full_result", "evaluation_report"):
            if name in e.metadata:
                links.append(e.metadata[name].value)
    assert len(links) > 10
    for url in links:
        assert url.startswith("http://127.0.0.1:5000/#/experiments/"), url
    assert any(u.endswith("/artifactPath/gates/report.html") for u in links)
    client = MlflowClient(tracking_uri=home.mlflow_tracking_uri)
    run = client.get_run(mats["customers_published"]["mlflow_run_id"].value)
    assert run.data.tags["dagster.run_id"] == result.run_id
    assert run.data.tags["dagster.asset_key"] == "customers_group_synthesizer"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_manifest_records_provenance_and_the_mlflow_run(env):
    home = env["home"]
    manifest = json.loads((home.public_dir / "customers" / "v000001" / "manifest.json").read_text())
    for field in ("version", "published_at", "source_fingerprint", "seed", "synthesizer",
                  "mlflow_run_id", "model_version", "code_version", "rows", "scores"):  # fmt: skip
        assert manifest.get(field) not in (None, ""), field
    assert set(manifest["scores"]) == {"fidelity", "privacy", "validity"}
    client = MlflowClient(tracking_uri=home.mlflow_tracking_uri)
    run = client.get_run(manifest["mlflow_run_id"])
    assert run.data.params["synthesizer"] == "cart"
    assert run.data.tags["synth_platform.source_fingerprint"] == manifest["source_fingerprint"]
    assert run.data.metrics["fit_seconds"] > 0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "gates")}
    expected = {"gates/fidelity.json", "gates/privacy.json", "gates/validity.json"}
    assert expected | {"gates/report.html"} <= artifacts
    versions = client.search_model_versions("name='synth_platform.customers'")
    assert [str(v.version) for v in versions] == [manifest["model_version"]]


def test_every_gate_metric_reaches_the_manifest_with_its_threshold(env):
    manifest = json.loads(
        (env["home"].public_dir / "customers" / "v000001" / "manifest.json").read_text()
    )
    metrics = {k: v["metrics"] for k, v in manifest["scores"].items()}
    assert metrics["fidelity"]["overall"]["threshold"] == 0.80  # the default: no lowered bar
    assert metrics["fidelity"]["utility"]["threshold"] is None  # reported: customers has a target
    assert metrics["fidelity"]["utility"]["value"] > 0
    assert metrics["privacy"]["exact_copies_train"] == {
        "value": 0, "threshold": 0, "direction": "max"
    }  # fmt: skip
    assert metrics["privacy"]["nndr_median"]["threshold"] == 0.5
    for attack in ("singling_out_risk", "linkability_risk", "inference_risk"):
        assert 0 <= metrics["privacy"][attack]["value"] <= 1
    for diag in ("boundary_adherence", "category_adherence", "key_uniqueness", "table_structure"):
        assert metrics["validity"][diag] == {"value": 1.0, "threshold": 1.0, "direction": "min"}


def test_evaluation_report_shows_every_score_and_stays_private(env):
    home = env["home"]
    html = (home.table_dir("transactions") / "gates" / "report.html").read_text()
    for needle in ("dcr_share", "nndr_median", "overall", "boundary_adherence", "amount"):
        assert needle in html, needle
    # 5 evaluated columns (the foreign key is checked by the group gates), heatmap, DCR.
    assert html.count("data:image/png;base64") >= 7
    assert not list(home.public_dir.rglob("*.html"))


def test_public_store_holds_no_real_row_and_no_source_pii(env):
    home = env["home"]
    real = pd.read_parquet(home.table_dir("customers") / "train.parquet")
    published = pd.read_parquet(home.public_dir / "customers" / "v000001" / "data.parquet")
    for col in ("full_name", "email", "phone", "national_id", "street_address"):
        assert not set(published[col].dropna()) & set(real[col].dropna()), col
    store = home.public_dir
    files = {p.name for p in store.rglob("*") if p.is_file() and "lake" not in p.parts}
    assert files <= {
        "data.parquet", "manifest.json", "LATEST", "STATE.json", "catalog.duckdb", ".lock"
    }  # fmt: skip
    lake = {p.suffix for p in (store / "lake").rglob("*") if p.is_file()}
    assert lake <= {".sqlite", ".parquet"}, lake


def test_same_seed_gives_the_same_synthetic_table(env):
    home = env["home"]
    model = next(m for m in _specs(env) if m.name == "accounts")
    first = lifecycle.sample_table(home=home, model=model)
    a = pd.read_parquet(first.path)
    lifecycle.sample_table(home=home, model=model)
    b = pd.read_parquet(first.path)
    pd.testing.assert_frame_equal(a, b)


def _specs(env):
    from tests.example import example_specs

    return example_specs()


def _plant(home: SynthHome, table: str, synthesizer) -> None:
    with open(home.table_dir(table) / "synthesizer.pkl", "wb") as fh:
        cloudpickle.dump(synthesizer, fh)


def _assert_previous_release_intact(home: SynthHome, table: str, version: str) -> None:
    assert latest_version(home.public_dir, table) == version
    with connect(home.public_dir) as con:
        assert con.sql(f"select count(*) from {table}").fetchall()[0][0] > 0


def test_children_rekeyed_to_missing_ids_are_blocked_by_integrity(env):
    from synth_platform.lib import group as G
    from synth_platform.lib.multitable import groups_from_specs
    from tests.example import example_specs

    home = env["home"]
    specs = example_specs()
    models = {m.name: m for m in specs}
    group = groups_from_specs(specs)[0]
    previous = {t: latest_version(home.public_dir, t) for t in TABLES}

    def random_ids(frames):
        out = dict(frames)
        tx = out["transactions"].copy()
        rng = np.random.default_rng(0)
        tx["account_id"] = rng.integers(10**9, 2 * 10**9, len(tx))  # no such account
        out["transactions"] = tx
        return out

    G.sample_group(home=home, group=group, models=models, tamper=random_ids)
    verdict = G.evaluate_group_gate(
        home=home, group=group, models=models, table="transactions", kind="integrity",
        expectations_dir=env["root"] / "expectations", tracking_uri=home.mlflow_tracking_uri,
    )  # fmt: skip
    assert verdict.passed is False
    assert verdict.metrics["integrity__account_id"] == 0.0
    assert (
        verdict.metrics["orphans__account_id"]
        == pd.read_parquet(home.table_dir("transactions") / "candidate.parquet").shape[0]
    )
    assert any("integrity__account_id" in f for f in verdict.failures)
    for t in TABLES:  # the other gates of the group pass or are pending: only integrity fails
        for kind in ("fidelity", "privacy", "validity"):
            lifecycle.evaluate_gate(
                home=home, model=models[t], kind=kind, tracking_uri=None,
                expectations_dir=env["root"] / "expectations",
            )  # fmt: skip
    with pytest.raises(GateFailedError, match=r"group customers.*transactions: integrity"):
        G.publish_group_tables(home=home, group=group, models=models)
    for t in TABLES:
        _assert_previous_release_intact(home, t, previous[t])
    with connect(home.public_dir) as con:
        assert (
            con.sql(
                "select count(*) from transactions t anti join accounts a using (account_id)"
            ).fetchall()[0][0]
            == 0
        )


def _shuffled_owners(frames):
    # Same keys, same counts per parent, but owners drawn at random: the dependence between
    # account and customer columns (type ~ segment, balance ~ income) is gone.
    out = dict(frames)
    accounts = out["accounts"].copy()
    accounts["customer_id"] = accounts["customer_id"].sample(frac=1.0, random_state=0).to_numpy()
    out["accounts"] = accounts
    return out


def _one_parent(frames):
    out = dict(frames)
    tx = out["transactions"].copy()
    tx["account_id"] = out["accounts"]["account_id"].iloc[0]  # every transaction on one account
    out["transactions"] = tx
    return out


def _unseen_category(frames):
    out = dict(frames)
    accounts = out["accounts"].copy()
    accounts.loc[accounts.index[:5], "status"] = "suspended"  # not an accepted value
    out["accounts"] = accounts
    return out


@pytest.mark.parametrize(
    ("tamper", "table", "kind"),
    [
        (_shuffled_owners, "accounts", "cross_table"),
        (_one_parent, "transactions", "cardinality"),
        (_unseen_category, "accounts", "validity"),
    ],
)
def test_planted_group_defects_are_blocked_by_their_gate(env, tamper, table, kind):
    from synth_platform.lib import group as G
    from synth_platform.lib.multitable import groups_from_specs
    from tests.example import example_specs

    home, expectations = env["home"], env["root"] / "expectations"
    specs = example_specs()
    models = {m.name: m for m in specs}
    group = groups_from_specs(specs)[0]
    previous = {t: latest_version(home.public_dir, t) for t in TABLES}
    G.sample_group(home=home, group=group, models=models, tamper=tamper)
    if kind in G.GROUP_GATE_KINDS:
        verdict = G.evaluate_group_gate(
            home=home, group=group, models=models, table=table, kind=kind,
            expectations_dir=expectations, tracking_uri=None,
        )  # fmt: skip
    else:
        verdict = lifecycle.evaluate_gate(
            home=home, model=models[table], kind=kind, expectations_dir=expectations,
            tracking_uri=None,
        )  # fmt: skip
    assert verdict.passed is False
    assert verdict.score < verdict.threshold
    with pytest.raises(GateFailedError, match=rf"{table}: {kind}"):
        G.publish_group_tables(home=home, group=group, models=models)
    for t in TABLES:
        _assert_previous_release_intact(home, t, previous[t])


def test_planted_leak_is_blocked_by_the_privacy_gate_and_the_release_survives(env):
    home = env["home"]
    before = latest_version(home.public_dir, "accounts")
    train = pd.read_parquet(home.table_dir("accounts") / "train.parquet")
    previous = {t: latest_version(home.public_dir, t) for t in TABLES}
    _plant(home, "accounts", LeakySynthesizer("accounts", train))
    result = _run(env["defs"], GROUP_STEPS)
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evals["accounts_privacy"].passed is False
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # The whole group is held back: no table of it is published without the others.
    assert not {f"{t}_published" for t in TABLES} & materialized
    for t in TABLES:
        _assert_previous_release_intact(home, t, previous[t])
    # Publishing on its own is refused too: the publisher re-checks the verdicts.
    model = next(m for m in _specs(env) if m.name == "accounts")
    with pytest.raises(GateFailedError, match="privacy"):
        lifecycle.publish_table(home=home, model=model)
    _assert_previous_release_intact(home, "accounts", before)


def test_planted_noise_is_blocked_by_the_fidelity_gate(env):
    home = env["home"]
    before = latest_version(home.public_dir, "customers")
    train = pd.read_parquet(home.table_dir("customers") / "train.parquet")
    meta, _ = lifecycle.load_metadata(lifecycle.paths_for(home, "customers"), "customers")
    _plant(
        home,
        "customers",
        NoiseSynthesizer("customers", train[list(meta.modelled)], meta.primary_key),
    )
    result = _run(env["defs"], GROUP_STEPS)
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evals["customers_fidelity"].passed is False
    score = evals["customers_fidelity"].metadata["score"].value
    assert score < evals["customers_fidelity"].metadata["threshold"].value
    _assert_previous_release_intact(home, "customers", before)


def test_a_new_model_is_opted_in_by_yml_alone(env, tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    yml = project / "models" / "marts" / "customer_summary.yml"
    doc = yaml.safe_load(yml.read_text())
    doc["models"][0].setdefault("config", {}).setdefault("meta", {})["synthetic"] = {
        "seed": 1,
        "rows": 1000,
        "synthesizer": "gaussian_copula",
        "parameters": {"default_distribution": "gaussian_kde"},
        # Its dbt `relationships` test to customers would make it a member of the demo's
        # group; here it is synthesized on its own (a meta override of the dbt test).
        "relationships": [],
    }
    yml.write_text(yaml.safe_dump(doc))
    defs = example_definitions(
        home=env["root"], project_dir=project, expectations_dir=env["root"] / "expectations"
    )
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"customer_summary_split", "customer_summary_published"} <= keys
    result = _run(defs, ["customer_summary", "customer_summary_split",
                         "customer_summary_synthesizer", "customer_summary_synthetic",
                         "customer_summary_published"])  # fmt: skip
    assert result.success
    assert latest_version(env["home"].public_dir, "customer_summary") == "v000001"


def test_bad_meta_block_fails_definitions_with_model_and_field(tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    yml = project / "models" / "marts" / "accounts.yml"
    doc = yaml.safe_load(yml.read_text())
    doc["models"][0]["config"]["meta"]["synthetic"]["holdout"] = 0.9
    yml.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=r"dbt model 'accounts'.*meta\.synthetic\.holdout"):
        example_definitions(home=tmp_path / "home", project_dir=project)


def _project_with(tmp_path, model: str, synthetic_update: dict):
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    yml = project / "models" / "marts" / f"{model}.yml"
    doc = yaml.safe_load(yml.read_text())
    doc["models"][0]["config"]["meta"]["synthetic"].update(synthetic_update)
    yml.write_text(yaml.safe_dump(doc))
    return project


def test_relationship_cycle_names_both_models(tmp_path):
    # customers -> transactions closes customers <- accounts <- transactions into a cycle.
    project = _project_with(
        tmp_path, "customers", {"relationships": [{"column": "region", "parent": "transactions"}]}
    )
    with pytest.raises(SpecError, match="cycle") as err:
        example_definitions(home=tmp_path / "home", project_dir=project)
    assert "'customers'" in str(err.value) and "'transactions'" in str(err.value)


def test_relationship_to_an_unknown_model_names_both_models(tmp_path):
    project = _project_with(
        tmp_path, "accounts", {"relationships": [{"column": "customer_id", "parent": "branches"}]}
    )
    with pytest.raises(SpecError, match="branches") as err:
        example_definitions(home=tmp_path / "home", project_dir=project)
    assert "dbt model 'accounts'" in str(err.value)


def test_rekeyed_children_rewrite_only_their_keys_and_match_a_full_rewrite(env):
    # After re-keying, a child's candidate takes its new foreign keys and keeps every other
    # column as sampled: the same file as converting the whole re-keyed frame again.
    from synth_platform.lib import group as G
    from synth_platform.lib.multitable import groups_from_specs
    from tests.example import example_specs

    home = env["home"]
    specs = example_specs()
    models = {m.name: m for m in specs}
    group = groups_from_specs(specs)[0]
    G.sample_group(home=home, group=group, models=models)
    path = home.table_dir("transactions") / "candidate.parquet"
    rekeyed = pq.read_table(path)
    accounts = pd.read_parquet(home.table_dir("accounts") / "candidate.parquet")
    assert rekeyed.column("account_id").to_pandas().isin(accounts["account_id"]).all()
    lifecycle.replace_candidate(home=home, table="transactions", frame=rekeyed.to_pandas())
    assert pq.read_table(path).equals(rekeyed)
