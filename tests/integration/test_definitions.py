"""Snapshot of the asset graph: catches accidental renames of assets, groups and checks."""

import dagster as dg

from synth_platform.defs.build import REFRESH_JOB, build_definitions


def test_asset_graph_has_the_lifecycle_per_opted_in_table(tmp_path):
    defs = build_definitions(root=tmp_path, cron="15 4 * * 1")
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    per_table = {f"{t}_{s}" for t in ("customers", "accounts", "transactions")
                 for s in ("split", "synthesizer", "synthetic", "published")}  # fmt: skip
    dbt_models = {"customers", "accounts", "transactions", "customer_summary",
                  "stg_bank__customers", "stg_bank__accounts", "stg_bank__transactions"}  # fmt: skip
    sources = {"bank/customers", "bank/accounts", "bank/transactions"}
    assert keys == per_table | dbt_models | sources
    checks = {c.name for c in graph.asset_check_keys}
    for t in ("customers", "accounts", "transactions"):
        assert {f"{t}_fidelity", f"{t}_privacy", f"{t}_validity"} <= checks
    assert "unique_customers_customer_id" in checks  # dbt tests surface as checks
    spec = graph.get(dg.AssetKey("customers_split"))
    assert spec.group_name == "synthetic_customers"
    assert graph.get(dg.AssetKey("customers_split")).parent_keys == {dg.AssetKey("customers")}
    schedule = defs.resolve_schedule_def(f"{REFRESH_JOB}_schedule")
    assert schedule.cron_schedule == "15 4 * * 1"


def test_gate_checks_are_blocking():
    defs = build_definitions(root="/tmp/unused-synth-home")
    gates = [s for a in defs.asset_checks for s in a.check_specs]
    assert len(gates) == 9
    for spec in gates:
        assert spec.blocking, spec.name
