import json
import subprocess
import sys

import duckdb
import pandas as pd
import pytest

from synth_platform.lib.errors import IdentifierError, PublicationError
from synth_platform.lib.publish import connect, latest_version, list_releases, publish_release


def _candidate(tmp_path, n, name="c.parquet"):
    p = tmp_path / name
    pd.DataFrame({"id": range(n), "v": [float(i) for i in range(n)]}).to_parquet(p)
    return p


def test_releases_are_versioned_and_latest_is_queryable_with_plain_sql(tmp_path):
    store = tmp_path / "public"
    r1 = publish_release(store=store, table="t", candidate=_candidate(tmp_path, 3), manifest={
        "rows": 3, "scores": {"fidelity": {"score": 0.9}}})  # fmt: skip
    r2 = publish_release(store=store, table="t", candidate=_candidate(tmp_path, 5, "d.parquet"),
                         manifest={"rows": 5})  # fmt: skip
    assert (r1.version, r2.version) == ("v000001", "v000002")
    assert latest_version(store, "t") == "v000002"
    with connect(store) as con:
        assert con.sql("select count(*) from t").fetchall() == [(5,)]
        assert con.sql("select count(*) from t__v000001").fetchall() == [(3,)]
        rows = con.sql("select version, is_latest from releases order by version").fetchall()
        assert rows == [("v000001", False), ("v000002", True)]
    assert json.loads((r1.path / "manifest.json").read_text())["rows"] == 3


def test_retention_prunes_old_releases_but_never_the_latest(tmp_path):
    store = tmp_path / "public"
    for i in range(4):
        publish_release(store=store, table="t", candidate=_candidate(tmp_path, i + 1),
                        manifest={}, keep=2)  # fmt: skip
    assert [r.version for r in list_releases(store, "t")] == ["v000003", "v000004"]


def test_a_killed_publisher_leaves_the_previous_release_serving(tmp_path):
    store = tmp_path / "public"
    publish_release(store=store, table="t", candidate=_candidate(tmp_path, 3), manifest={})
    # What a publisher killed before its rename leaves behind: a temp dir, no pointer change.
    junk = store / "t" / ".v000002.tmp-dead"
    junk.mkdir()
    (junk / "data.parquet").write_bytes(b"partial")
    with connect(store) as con:
        assert con.sql("select count(*) from t").fetchall() == [(3,)]
    publish_release(store=store, table="t", candidate=_candidate(tmp_path, 4), manifest={})
    assert not junk.exists()
    assert latest_version(store, "t") == "v000002"


def test_missing_candidate_and_hostile_table_names_are_refused(tmp_path):
    with pytest.raises(PublicationError):
        publish_release(store=tmp_path, table="t", candidate=tmp_path / "nope", manifest={})
    with pytest.raises(IdentifierError):
        publish_release(store=tmp_path, table="../etc", candidate=_candidate(tmp_path, 1),
                        manifest={})  # fmt: skip


def test_catalog_is_readable_while_another_connection_reads_it(tmp_path):
    store = tmp_path / "public"
    publish_release(store=store, table="t", candidate=_candidate(tmp_path, 3), manifest={})
    reader = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    publish_release(store=store, table="t", candidate=_candidate(tmp_path, 6), manifest={})
    # The open reader keeps its snapshot; a new reader (another process) sees the new release.
    assert reader.sql("select count(*) from t").fetchall() == [(3,)]
    reader.close()
    out = subprocess.run(
        [sys.executable, "-c", "import duckdb,sys; con = duckdb.connect(sys.argv[1], read_only=True); "
         "print(con.sql('select count(*) from t').fetchall()[0][0])",
         str(store / "catalog.duckdb")], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "6"


def test_a_group_is_published_as_one_release_set(tmp_path):
    from synth_platform.lib.publish import Staged, publish_group, read_state

    store = tmp_path / "public"
    first = publish_group(store=store, releases={
        "parent": Staged(_candidate(tmp_path, 2), {}),
        "child": Staged(_candidate(tmp_path, 3, "k.parquet"), {}),
    })  # fmt: skip
    assert {r.manifest["release_set"] for r in first.values()} == {1}
    assert first["child"].manifest["group"] == ["child", "parent"]
    assert read_state(store)["tables"]["child"] == {"latest": "v000001", "versions": ["v000001"]}
    with connect(store) as con:
        rows = con.sql("select table_name, release_set from releases order by 1").fetchall()
    assert rows == [("child", 1), ("parent", 1)]


def test_a_staged_but_uncommitted_version_stays_invisible_and_is_cleaned(tmp_path):
    store = tmp_path / "public"
    publish_release(store=store, table="t", candidate=_candidate(tmp_path, 3), manifest={})
    # A publisher killed after renaming its release dir but before replacing STATE.json.
    orphan = store / "t" / "v000002"
    orphan.mkdir()
    (orphan / "data.parquet").write_bytes(b"never committed")
    (orphan / "manifest.json").write_text("{}")
    assert [r.version for r in list_releases(store, "t")] == ["v000001"]
    assert latest_version(store, "t") == "v000001"
    release = publish_release(store=store, table="t", candidate=_candidate(tmp_path, 4),
                              manifest={})  # fmt: skip
    assert release.version == "v000002"
    with connect(store) as con:
        assert con.sql("select count(*) from t").fetchall() == [(4,)]


def test_repair_rebuilds_a_catalog_that_lags_the_committed_state(tmp_path):
    from synth_platform.lib.publish import repair

    store = tmp_path / "public"
    publish_release(store=store, table="t", candidate=_candidate(tmp_path, 3), manifest={})
    stale = (store / "catalog.duckdb").read_bytes()
    publish_release(store=store, table="t", candidate=_candidate(tmp_path, 5), manifest={})
    (store / "catalog.duckdb").write_bytes(stale)  # killed between STATE and catalog swaps
    repair(store)
    with connect(store) as con:
        assert con.sql("select count(*) from t").fetchall() == [(5,)]


def test_connect_sees_a_new_release_in_the_same_process(tmp_path):
    store = tmp_path / "public"
    publish_release(store=store, table="t", candidate=_candidate(tmp_path, 3), manifest={})
    first = connect(store)
    publish_release(store=store, table="t", candidate=_candidate(tmp_path, 7), manifest={})
    with connect(store) as con:
        assert con.sql("select count(*) from t").fetchall() == [(7,)]
    assert first.sql("select count(*) from t").fetchall() == [(3,)]  # its own snapshot
    first.close()


def test_a_store_from_before_state_json_keeps_its_releases(tmp_path):
    store = tmp_path / "public"
    publish_release(store=store, table="t", candidate=_candidate(tmp_path, 3), manifest={})
    (store / "STATE.json").unlink()
    publish_release(store=store, table="t", candidate=_candidate(tmp_path, 4), manifest={})
    assert [r.version for r in list_releases(store, "t")] == ["v000001", "v000002"]


def test_retired_release_files_outlive_the_switch_for_the_grace_period(tmp_path):
    from synth_platform.lib.publish import Staged, publish_group

    store = tmp_path / "public"
    for i in range(3):
        publish_group(store=store, releases={"t": Staged(_candidate(tmp_path, i + 1), {})},
                      keep=1)  # fmt: skip
    # v1 and v2 are retired (not listed) but their files stay for a reader of an old catalog.
    assert [r.version for r in list_releases(store, "t")] == ["v000003"]
    assert (store / "t" / "v000001" / "data.parquet").exists()
    publish_group(store=store, releases={"t": Staged(_candidate(tmp_path, 9), {})}, keep=1,
                  grace=0)  # fmt: skip
    assert sorted(p.name for p in (store / "t").glob("v*")) == ["v000003", "v000004"]


# --------------------------------------------------------------------------- optional lake


def _no_duckdb_extensions(tmp_path, monkeypatch):
    """A process whose DuckDB can load no extension (as DuckDB 2.x without ext wheels)."""
    empty = tmp_path / "no-extensions"
    empty.mkdir()
    monkeypatch.setenv("SYNTH_DUCKDB_EXTENSION_DIR", str(empty))
    monkeypatch.delenv("SYNTH_LAKE_CATALOG", raising=False)
    monkeypatch.delenv("SYNTH_LAKE_DATA_PATH", raising=False)


def test_without_ducklake_an_unconfigured_lake_is_off_and_publishing_works(tmp_path, monkeypatch):
    from synth_platform.lib.lake import LakeConfig, lake_unavailable_reason
    from synth_platform.lib.publish import LAKE_DIR, Staged, publish_group, read_state

    _no_duckdb_extensions(tmp_path, monkeypatch)
    store = tmp_path / "public"
    reason = lake_unavailable_reason()
    assert reason is not None and "synth_platform[ducklake]" in reason, reason
    lake = LakeConfig.from_env(store / LAKE_DIR)  # what lifecycle.publish_tables passes
    assert lake is None
    out = publish_group(store=store, releases={"t": Staged(_candidate(tmp_path, 3), {})}, lake=lake)
    assert out["t"].version == "v000001" and read_state(store)["generation"] == 1
    with connect(store) as con:
        assert con.sql("select count(*) from t").fetchall() == [(3,)]
    assert not (store / LAKE_DIR).exists()  # file store + catalog.duckdb only


def test_an_explicit_lake_that_cannot_load_refuses_before_committing(tmp_path, monkeypatch):
    from synth_platform.lib.lake import LakeConfig
    from synth_platform.lib.publish import LAKE_DIR, STATE, Staged, publish_group

    _no_duckdb_extensions(tmp_path, monkeypatch)
    store = tmp_path / "public"
    publish_group(store=store, releases={"t": Staged(_candidate(tmp_path, 3), {})})
    state_before = (store / STATE).read_text()
    catalog_before = (store / "catalog.duckdb").read_bytes()

    monkeypatch.setenv("SYNTH_LAKE_CATALOG", f"sqlite:{store / LAKE_DIR / 'lake.sqlite'}")
    lake = LakeConfig.from_env(store / LAKE_DIR)
    assert lake is not None and lake.kind == "sqlite"  # explicit: kept, so it cannot be skipped
    with pytest.raises(PublicationError) as err:
        publish_group(
            store=store, releases={"t": Staged(_candidate(tmp_path, 5, "d.parquet"), {})}, lake=lake
        )
    message = str(err.value)
    for part in ("nothing was published", "'ducklake'", "synth_platform[ducklake]",
                 "DuckDB 1.4.4", "SYNTH_DUCKDB_EXTENSION_DIR", "SYNTH_LAKE_CATALOG=off"):  # fmt: skip
        assert part in message, (part, message)
    # Nothing committed or left behind; the previous release stays what readers get.
    assert (store / STATE).read_text() == state_before
    assert (store / "catalog.duckdb").read_bytes() == catalog_before
    assert sorted(p.name for p in (store / "t").iterdir()) == ["LATEST", "v000001"]
    assert not (store / LAKE_DIR).exists()
    assert latest_version(store, "t") == "v000001"
    with connect(store) as con:
        assert con.sql("select count(*) from t").fetchall() == [(3,)]


def test_the_catalog_opens_under_duckdb_1_4(tmp_path):
    """The catalog is written in DuckDB 1.4's storage format, so consumers still on DuckDB 1.4
    (the `ducklake` extra, a 1.x CLI) open what the DuckDB 2.x publisher writes."""
    from tests import pinned_duckdb

    store = tmp_path / "public"
    publish_release(store=store, table="t", candidate=_candidate(tmp_path, 3), manifest={"rows": 3})
    missing = pinned_duckdb.missing_reason()
    if missing is not None:
        pytest.skip(missing)
    run = pinned_duckdb.run_pinned(
        ["-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
         "print(duckdb.__version__, con.execute('select count(*) from t').fetchall()[0][0], "
         "con.execute('select rows from releases').fetchall()[0][0])",
         str(store / "catalog.duckdb")],
        cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [pinned_duckdb.VERSION, "3", "3"]
