"""The public store under real concurrency: readers in other processes during refreshes, a
publisher killed with SIGKILL at every phase of a publication, and a scan of the whole public
zone for anything that is not synthetic.

Readers and publishers run in separate OS processes (`subprocess`), as consumers and the
Dagster run worker do in production, so DuckDB's file locks and the page cache are real.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synth_platform.lib.pii import fake_column
from synth_platform.lib.publish import (
    CATALOG,
    STATE,
    Staged,
    connect,
    publish_group,
    read_state,
    repair,
)
from synth_platform.lib.split import split_frame

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("child", "parent")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _write_candidate(path: Path, n: int, marker: int, *, seed: int) -> Path:
    """`n` rows whose `marker` column names the publication they belong to."""
    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "id": np.arange(n, dtype=np.int64),
            "marker": np.full(n, marker, dtype=np.int64),
            "x": rng.random(n),
        }
    )
    pq.write_table(table, path, compression="none")
    return path


def _store_listing_problems(store: Path) -> list[str]:
    """What a clean store must not contain: staged or orphan releases, temp files, WALs."""
    state = read_state(store)
    problems = []
    for p in sorted(store.rglob("*")):
        rel = p.relative_to(store)
        parts = rel.parts
        if len(parts) == 1:
            if p.is_dir():
                if p.name not in state["tables"]:
                    problems.append(f"unexpected directory {rel}")
            elif p.name not in (STATE, CATALOG, ".lock"):
                problems.append(f"unexpected file {rel}")
        elif len(parts) == 2:
            versions = state["tables"].get(parts[0], {}).get("versions", [])
            if p.is_dir():
                # A release retention dropped stays until the next publication (older than
                # every kept one); anything newer was staged and never committed.
                retired = p.name[1:].isdigit() and bool(versions) and p.name < versions[0]
                if p.name not in versions and not retired:
                    problems.append(f"uncommitted release directory {rel}")
            elif p.name != "LATEST":
                problems.append(f"unexpected file {rel}")
        elif len(parts) != 3 or p.name not in ("data.parquet", "manifest.json"):
            problems.append(f"unexpected entry {rel}")
    for table, entry in state["tables"].items():
        latest = store / table / "LATEST"
        if not latest.exists() or latest.read_text().strip() != entry["latest"]:
            problems.append(f"{table}/LATEST does not name {entry['latest']}")
    return problems


# ---------------------------------------------------------------- 1. readers during refreshes

READER = r"""
import json, sys, time
from pathlib import Path
import duckdb
from synth_platform.lib.publish import connect

store, mode, out, stop, ready = (Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]),
                                 Path(sys.argv[4]), Path(sys.argv[5]))
deadline = time.monotonic() + float(sys.argv[6])
QUERY = '''select (select count(*) from parent), (select count(*) from child),
  (select list(distinct marker order by marker) from parent),
  (select list(distinct marker order by marker) from child),
  (select list(distinct release_set order by release_set) from releases where is_latest)'''
PROVENANCE = '''select table_name, release_set, rows, manifest->>'marker'
  from releases where is_latest order by table_name'''
reads, errors, inconsistent, seen = 0, [], [], {}
while time.monotonic() < deadline:
    last = stop.exists()  # one more read after the final publication, then stop
    try:
        if mode == "connect":
            con = connect(store)
        else:
            con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
        try:
            n_parent, n_child, m_parent, m_child, sets = con.execute(QUERY).fetchall()[0]
            prov = con.execute(PROVENANCE).fetchall()
        finally:
            con.close()
        reads += 1
        observed = [n_parent, n_child, m_parent, m_child, sets, prov]
        ok = (
            len(sets) == 1 and len(m_parent) == 1 and m_parent == m_child
            and [r[0] for r in prov] == ["child", "parent"]
            and all(r[1] == sets[0] and int(r[3]) == m_parent[0] for r in prov)
            and prov[0][2] == n_child and prov[1][2] == n_parent
        )
        if ok:
            seen[str(sets[0])] = [m_parent[0], n_parent, n_child]
        else:
            inconsistent.append(repr(observed))
    except Exception as exc:  # every failure is reported, none is retried
        errors.append(f"{type(exc).__name__}: {exc}")
    if not ready.exists():
        ready.touch()
    if last:
        break
out.write_text(json.dumps({"reads": reads, "errors": errors, "inconsistent": inconsistent,
                           "seen": seen, "stopped": last}))
"""


def _publish_marked(store: Path, work: Path, marker: int, *, keep: int | None) -> dict:
    n_parent, n_child = 50_000 + 1_000 * marker, 2 * (50_000 + 1_000 * marker) + marker
    releases = {
        "parent": Staged(
            _write_candidate(work / f"parent-{marker}.parquet", n_parent, marker, seed=marker),
            {"rows": n_parent, "marker": marker, "scores": {"fidelity": {"score": 0.9}}},
        ),
        "child": Staged(
            _write_candidate(work / f"child-{marker}.parquet", n_child, marker, seed=-marker % 99),
            {"rows": n_child, "marker": marker, "scores": {"fidelity": {"score": 0.8}}},
        ),
    }
    out = publish_group(store=store, releases=releases, keep=keep)
    assert {r.manifest["release_set"] for r in out.values()} == {read_state(store)["generation"]}
    return {
        "release_set": out["parent"].manifest["release_set"],
        "expected": [marker, n_parent, n_child],
    }


def test_readers_in_other_processes_see_one_whole_release_set_during_refreshes(tmp_path):
    # keep=1: every refresh also retires the release the previous catalog serves, the case
    # where a reader who opened that catalog just before the swap could lose its files.
    keep = 1
    store, work = tmp_path / "public", tmp_path / "work"
    work.mkdir()
    published = {}
    first = _publish_marked(store, work, 1, keep=keep)
    published[first["release_set"]] = first["expected"]

    stop = tmp_path / "stop"
    readers = []
    for i in range(4):
        mode = "connect" if i % 2 == 0 else "plain"
        out, ready = tmp_path / f"reader-{i}.json", tmp_path / f"ready-{i}"
        args = [str(store), mode, str(out), str(stop), str(ready), "40"]
        proc = subprocess.Popen([sys.executable, "-c", READER, *args], env=_env())
        readers.append((proc, out, ready, mode))
    deadline = time.monotonic() + 30
    while not all(r[2].exists() for r in readers):
        assert time.monotonic() < deadline, "readers did not start"
        assert all(r[0].poll() is None for r in readers), "a reader died at start"
        time.sleep(0.02)

    rng = random.Random(keep)
    for marker in range(2, 12):  # ten refreshes, some back to back, some spaced out
        time.sleep(rng.choice([0.0, 0.0, 0.05, 0.15]))
        rec = _publish_marked(store, work, marker, keep=keep)
        published[rec["release_set"]] = rec["expected"]
    time.sleep(0.2)
    stop.touch()

    results = []
    for proc, out, _, mode in readers:
        assert proc.wait(timeout=60) == 0, f"{mode} reader exited with {proc.returncode}"
        results.append((mode, json.loads(out.read_text())))
    for mode, res in results:
        assert res["errors"] == [], f"{mode} reader: {res['errors'][:5]}"
        assert res["inconsistent"] == [], f"{mode} reader: {res['inconsistent'][:5]}"
        assert res["stopped"], f"{mode} reader ran out of time before the refreshes ended"
        assert res["reads"] > 20, f"{mode} reader made only {res['reads']} reads"
        # Whatever a reader saw is exactly what was published under that release set.
        for release_set, observed in res["seen"].items():
            assert published[int(release_set)] == observed, (release_set, observed)
        assert len(res["seen"]) >= 2, f"{mode} reader saw only {sorted(res['seen'])}"
        assert str(max(published)) in res["seen"], "the last refresh was never served"
    assert _store_listing_problems(store) == []


# ---------------------------------------------------------------- 2. SIGKILL mid-publication

PUBLISHER = r"""
import json, sys, time
from pathlib import Path
from synth_platform.lib.publish import Staged, publish_group

store, spec = Path(sys.argv[1]), json.loads(sys.argv[2])
releases = {t: Staged(Path(s["candidate"]), s["manifest"]) for t, s in spec.items()}
print(time.time(), flush=True)
publish_group(store=store, releases=releases, keep=2)
print(time.time(), flush=True)
"""

# Two alternating candidate pairs (about 50 MB each); row counts tell them apart.
BIG = {
    0: {"parent": 1_500_000, "child": 500_000},
    1: {"parent": 1_500_001, "child": 500_003},
}


def _big_candidates(work: Path) -> dict[int, dict]:
    specs = {}
    for k, sizes in BIG.items():
        specs[k] = {
            t: {
                "candidate": str(_write_candidate(work / f"{t}-{k}.parquet", n, k, seed=k)),
                "manifest": {"rows": n, "marker": k},
            }
            for t, n in sizes.items()
        }
    return specs


def _run_publisher(store: Path, spec: dict, kill_after: float | None) -> tuple[bool, float, float]:
    """Run a publisher; SIGKILL it `kill_after` seconds after it starts publishing.

    Returns (whether it finished on its own, start time, end time or None)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, str(store), json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        t0 = float(proc.stdout.readline())
        if kill_after is None:
            t1 = float(proc.stdout.readline())
            assert proc.wait(timeout=60) == 0
            return True, t0, t1
        time.sleep(max(0.0, t0 + kill_after - time.time()))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        return proc.returncode == 0, t0, None
    finally:
        proc.stdout.close()


def _served(store: Path) -> dict:
    with connect(store) as con:
        n_parent, n_child, m_parent, m_child = con.execute(
            "select (select count(*) from parent), (select count(*) from child), "
            "(select list(distinct marker) from parent), (select list(distinct marker) from child)"
        ).fetchall()[0]
        rel = con.execute(
            "select table_name, version, release_set, rows, (manifest->>'marker')::int "
            "from releases where is_latest order by table_name"
        ).fetchall()
    assert m_parent == m_child and len(m_parent) == 1, (m_parent, m_child)
    assert [r[0] for r in rel] == ["child", "parent"]
    assert {r[2] for r in rel} == {rel[0][2]}, f"served a mix of release sets: {rel}"
    assert (rel[0][3], rel[1][3]) == (n_child, n_parent), "counts differ from the manifests"
    assert rel[0][4] == rel[1][4] == m_parent[0]
    # The manifests on disk agree with the catalog.
    for table, version, release_set, rows, _ in rel:
        manifest = json.loads((store / table / version / "manifest.json").read_text())
        assert (manifest["release_set"], manifest["rows"]) == (release_set, rows)
    return {
        "release_set": rel[0][2],
        "marker": m_parent[0],
        "versions": {r[0]: r[1] for r in rel},
        "counts": {"parent": n_parent, "child": n_child},
    }


PHASES = (
    "before staging",
    "staging the first table",
    "renamed 1 of 2 (staging the second), not committed",
    "renamed 2 of 2, not committed",
    "committed, catalog lagging",
    "committed, catalog swapped, LATEST pending",
    "committed, all written (killed during exit)",
    "finished before the kill",
)


def _phase(store: Path, before: dict, finished: bool) -> int:
    """Which phase of the publication a kill interrupted (an index into PHASES)."""
    state = read_state(store)
    if state["generation"] == before["generation"]:
        assert state == before, "STATE.json changed without a new generation"
        renamed, staging = 0, False
        for t in TABLES:
            newest = max(before["tables"][t]["versions"])
            for c in (store / t).iterdir() if (store / t).exists() else []:
                renamed += c.name.startswith("v") and c.name > newest
                staging |= c.name.startswith(".v") and ".tmp-" in c.name
        if renamed:
            return 1 + renamed
        return 1 if staging else 0
    assert state["generation"] == before["generation"] + 1
    if finished:
        return 7
    with duckdb.connect(str(store / CATALOG), read_only=True) as con:
        catalog_set = con.execute("select max(release_set) from releases").fetchall()[0][0]
    if catalog_set == before["generation"]:
        return 4
    latest = [(store / t / "LATEST").read_text().strip() for t in TABLES]
    return 5 if latest != [state["tables"][t]["latest"] for t in TABLES] else 6


def test_a_publisher_killed_at_any_instant_leaves_the_previous_release_set_serving(tmp_path):
    store, work = tmp_path / "public", tmp_path / "work"
    work.mkdir()
    specs = _big_candidates(work)
    publish_group(
        store=store,
        releases={t: Staged(Path(s["candidate"]), s["manifest"]) for t, s in specs[1].items()},
        keep=2,
    )
    _, t0, t1 = _run_publisher(store, specs[0], None)  # an uninterrupted one, to time it
    total = t1 - t0

    def attempt(delay: float) -> tuple[float, int]:
        before = read_state(store)
        served_before = _served(store)
        assert served_before["release_set"] == before["generation"]
        new = (served_before["marker"] + 1) % 2
        finished, _, _ = _run_publisher(store, specs[new], delay)
        phase = _phase(store, before, finished)
        # Readers see exactly one committed release set, never an error or a mix.
        served = _served(store)
        state = read_state(store)
        if state["generation"] == before["generation"]:
            assert served == served_before, PHASES[phase]
        elif served["release_set"] == before["generation"]:
            assert PHASES[phase] == "committed, catalog lagging"
            assert served == served_before
            repair(store)  # what the next publisher (or an operator) does
            served = _served(store)
        assert served["release_set"] == read_state(store)["generation"]
        assert served["versions"] == {t: state["tables"][t]["latest"] for t in TABLES}
        assert served["counts"] == BIG[served["marker"]]
        # The next publication cleans up after the dead one and is served.
        again = (served["marker"] + 1) % 2
        publish_group(
            store=store,
            releases={
                t: Staged(Path(s["candidate"]), s["manifest"]) for t, s in specs[again].items()
            },
            keep=2,
        )
        after = _served(store)
        assert after["release_set"] == read_state(store)["generation"] == served["release_set"] + 1
        assert after["counts"] == BIG[again] and after["marker"] == again
        assert _store_listing_problems(store) == [], PHASES[phase]
        return round(delay, 4), phase

    # Kills spread over the whole publication...
    hits = [attempt(total * f) for f in (0.0, 0.2, 0.4, 0.6, 0.8)]
    # ...then aimed by bisection at the narrow windows (phases come in order; timings jitter).
    # A window can be narrower than the jitter of the phases (fsync times vary by milliseconds):
    # once the bounds are within 10 ms (or cross), draw delays within 20 ms of them instead.
    rng = random.Random(0)
    for wanted in ({1}, {2, 3}, {4, 5}):
        for _ in range(40):
            if any(p in wanted for _, p in hits):
                break
            lo = max([d for d, p in hits if p < min(wanted)], default=0.0)
            hi = min([d for d, p in hits if p > max(wanted)], default=total)
            if hi - lo > 0.01:
                delay = (lo + hi) / 2
            else:
                delay = max(0.0, rng.uniform(min(lo, hi) - 0.02, max(lo, hi) + 0.02))
            hits.append(attempt(delay))
    hit = sorted({p for _, p in hits})
    print(
        f"\npublish {total:.3f} s; kills (delay s, phase): "
        + "; ".join(f"{d} {PHASES[p]}" for d, p in sorted(hits))
    )
    assert {2, 3} & set(hit), [PHASES[p] for p in hit]  # release dirs renamed, STATE not swapped
    assert {4, 5} & set(hit), [PHASES[p] for p in hit]  # STATE swapped, publisher not done


# ---------------------------------------------------------------- 3. scan of the public zone

ALLOWED_TOP = {STATE, CATALOG, ".lock"}
NON_ASCII_NAME = "Zoë Müller-Łukasik"
PII_COLUMNS = {"name": "name", "email": "email", "phone": "phone_number", "ssn": "ssn"}


@functools.lru_cache(maxsize=4)
def _needle_regex(pii: frozenset[str]) -> re.Pattern[bytes]:
    """One regex over all PII strings, as UTF-8 and as JSON escapes them, shaped as a trie so
    that a scan costs one pass over the bytes rather than one per value."""
    trie: dict = {}
    for v in pii:
        for form in {v.encode(), json.dumps(v)[1:-1].encode()}:
            node = trie
            for byte in form:
                node = node.setdefault(byte, {})
            node[None] = {}

    def build(node: dict) -> bytes:
        alts = [
            re.escape(bytes([b])) + build(node[b]) for b in sorted(k for k in node if k is not None)
        ]
        if not alts:
            return b""
        body = alts[0] if len(alts) == 1 else b"(?:" + b"|".join(alts) + b")"
        return b"(?:" + body + b")?" if None in node else body

    return re.compile(build(trie))


def _row_hashes(frame: pd.DataFrame, columns: list[str]) -> set[int]:
    canon = frame[columns].astype(str)
    return set(pd.util.hash_pandas_object(canon, index=False).to_numpy().tolist())


def scan_public_zone(store: Path, *, real: list[pd.DataFrame], pii: set[str]) -> list[str]:
    """Everything in the public store that is not an allowed, synthetic artefact.

    * every file is of an allowed kind at its allowed place;
    * no published Parquet row equals a real row (hash of every column, values as text);
    * no real PII string occurs in any file's bytes, nor in the decoded values of the
      Parquet files and of the catalog (compression could otherwise hide one).
    """
    findings = []
    files = [p for p in sorted(Path(store).rglob("*")) if p.is_file()]
    for p in files:
        parts = p.relative_to(store).parts
        ok = (
            (len(parts) == 1 and parts[0] in ALLOWED_TOP)
            or (len(parts) == 2 and parts[1] == "LATEST")
            or (
                len(parts) == 3
                and parts[1].startswith("v")
                and parts[1][1:].isdigit()
                and parts[2] in ("data.parquet", "manifest.json")
            )
        )
        if not ok:
            findings.append(f"file of a kind not allowed: {'/'.join(parts)}")
    needles = _needle_regex(frozenset(v for v in pii if v))
    for p in files:
        for found in sorted({m.group(0) for m in needles.finditer(p.read_bytes())}):
            findings.append(f"PII {found.decode()!r} in the bytes of {p.relative_to(store)}")
    for p in files:
        if p.name != "data.parquet":
            continue
        published = pd.read_parquet(p)
        text = {str(v) for c in published.columns for v in published[c].dropna().unique()}
        findings += [f"PII {v!r} among the values of {p.relative_to(store)}" for v in pii & text]
        for frame in real:
            common = [c for c in frame.columns if c in published.columns]
            if common:
                leaked = _row_hashes(published, common) & _row_hashes(frame, common)
                if leaked:
                    findings.append(f"{len(leaked)} real rows in {p.relative_to(store)}")
    catalog = Path(store) / CATALOG
    if catalog.exists():
        with duckdb.connect(str(catalog), read_only=True) as con:
            rows = con.execute("select * from releases").fetchall()
            dump = " ".join(str(v) for r in rows for v in r)
            views = con.execute("select sql from duckdb_views() where not internal").fetchall()
            dump += " ".join(str(v[0]) for v in views)
        for found in sorted({m.group(0) for m in needles.finditer(dump.encode())}):
            findings.append(f"PII {found.decode()!r} in the catalog")
    return findings


def _real_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            c: fake_column(provider=p, n=n, seed=seed + i)
            for i, (c, p) in enumerate(PII_COLUMNS.items())
        }
    )
    frame["age"] = rng.integers(18, 90, n)
    frame["income"] = np.round(rng.lognormal(10, 0.5, n), 2)
    frame["segment"] = rng.choice(["retail", "premium", "business"], n)
    frame["opened"] = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, n), "D")
    return frame


def _synthetic_like(real: pd.DataFrame, n: int, seed: int, forbidden: set[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = pd.DataFrame(
        {
            c: fake_column(provider=p, n=n, seed=1000 + seed + i, forbidden=forbidden)
            for i, (c, p) in enumerate(PII_COLUMNS.items())
        }
    )
    out["age"] = rng.integers(18, 90, n)
    out["income"] = np.round(rng.lognormal(10, 0.5, n), 2)
    out["segment"] = rng.choice(real["segment"].unique(), n)
    out["opened"] = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, n), "D")
    return out


@pytest.fixture(scope="module")
def pii_data():
    """Real tables with PII, their train/holdout split and a synthetic twin with fresh fakes."""
    real = {"customers": _real_frame(1_200, seed=11), "contacts": _real_frame(600, seed=23)}
    real["contacts"].loc[0, "name"] = NON_ASCII_NAME
    pii = {str(v) for f in real.values() for c in PII_COLUMNS for v in f[c]}
    frames, synthetic = [], {}
    for i, (table, frame) in enumerate(real.items()):
        train, holdout = split_frame(frame, key="email", holdout=0.2, seed=5)
        frames += [train, holdout]
        synthetic[table] = _synthetic_like(train, len(train), seed=i, forbidden=pii)
    return {"real": real, "pii": pii, "frames": frames, "synthetic": synthetic}


@pytest.fixture
def pii_zone(pii_data, tmp_path):
    releases = {}
    for table, synthetic in pii_data["synthetic"].items():
        path = tmp_path / f"{table}.parquet"
        synthetic.to_parquet(path, index=False)
        releases[table] = Staged(
            path,
            {
                "rows": len(synthetic),
                "source_fingerprint": "sha256:abc",
                "scores": {"privacy": {"score": 0.99, "passed": True}},
            },
        )
    store = tmp_path / "public"
    publish_group(store=store, releases=releases, keep=2)
    publish_group(store=store, releases=releases, keep=2)  # two releases per table
    return {**pii_data, "store": store, "tmp": tmp_path}


def test_the_public_zone_holds_only_synthetic_artefacts(pii_zone):
    store = pii_zone["store"]
    assert len(pii_zone["pii"]) > 7_000  # every real PII value is searched for
    assert scan_public_zone(store, real=pii_zone["frames"], pii=pii_zone["pii"]) == []
    # the scanner did read published rows with every real column
    published = pd.read_parquet(store / "customers" / "v000002" / "data.parquet")
    assert set(pii_zone["frames"][0].columns) <= set(published.columns)


def test_the_zone_scan_catches_a_leak(pii_zone):
    store, frames, pii, tmp = (pii_zone[k] for k in ("store", "frames", "pii", "tmp"))
    real = pii_zone["real"]["customers"]
    holdout_row = frames[1].iloc[[3]]
    email = str(holdout_row["email"].iloc[0])
    assert NON_ASCII_NAME in pii

    # Real values in a manifest: found in its bytes (also as JSON escapes non-ASCII text)
    # and in the catalog.
    synthetic = pd.read_parquet(store / "customers" / "v000002" / "data.parquet")
    path = tmp / "leaky-manifest.parquet"
    synthetic.to_parquet(path, index=False)
    manifest = {"note": email, "reviewer": NON_ASCII_NAME}
    publish_group(store=store, releases={"customers": Staged(path, manifest)}, keep=2)
    findings = scan_public_zone(store, real=frames, pii=pii)
    assert f"PII {email!r} in the bytes of customers/v000003/manifest.json" in findings, findings
    escaped = json.dumps(NON_ASCII_NAME)[1:-1]
    assert f"PII {escaped!r} in the bytes of customers/v000003/manifest.json" in findings
    assert f"PII {email!r} in the catalog" in findings, findings
    forms = (NON_ASCII_NAME, escaped)  # the catalog keeps the manifest as JSON text
    assert any(f"PII {v!r} in the catalog" in findings for v in forms), findings

    # One real holdout row among the synthetic ones: found by its hash and by its values,
    # even in a compressed Parquet file.
    leaky = pd.concat([synthetic.iloc[:500], holdout_row, synthetic.iloc[500:]], ignore_index=True)
    path = tmp / "leaky-row.parquet"
    leaky.to_parquet(path, index=False, compression="zstd")
    publish_group(store=store, releases={"customers": Staged(path, {})}, keep=2)
    findings = scan_public_zone(store, real=frames, pii=pii)
    assert "1 real rows in customers/v000004/data.parquet" in findings, findings
    assert f"PII {email!r} among the values of customers/v000004/data.parquet" in findings

    # A file of a kind that must never be public.
    real.to_parquet(store / "customers" / "holdout.parquet")
    findings = scan_public_zone(store, real=frames, pii=pii)
    assert "file of a kind not allowed: customers/holdout.parquet" in findings
