"""Snapshot of the asset graph: catches accidental renames of assets, groups and checks."""

import dagster as dg

from synth_platform.defs.build import REFRESH_JOB, build_definitions


def test_asset_graph_has_the_lifecycle_per_opted_in_table(tmp_path):
    defs = build_definitions(root=tmp_path, cron="15 4 * * 1")
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
    defs = build_definitions(root="/tmp/unused-synth-home")
    gates = [s for a in defs.asset_checks for s in a.check_specs]
    assert len(gates) == 9 + 6  # 3 per table, 3 group gates per child table
    for spec in gates:
        assert spec.blocking, spec.name
