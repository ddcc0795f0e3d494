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
