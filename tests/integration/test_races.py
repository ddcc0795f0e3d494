"""Races on one home: never a publication of bytes that no gate saw.

Real processes run the lifecycle functions (sample -> three gates -> publish) on one
`SYNTH_HOME` over a tiny DuckDB warehouse: two refreshes of the same table at once, and samplers
SIGKILLed at every stage of writing the candidate, followed by publishing. Every release in the
store must hash to a candidate id that every gate approved, and the previous release must stay
readable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import cloudpickle
import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synth_platform.lib import lifecycle
from synth_platform.lib.errors import PublicationError, SourceError, SynthPlatformError
from synth_platform.lib.home import SynthHome
from synth_platform.lib.publish import connect, latest_version, list_releases
from synth_platform.lib.specs import ModelSpec, TableSpec
from synth_platform.lib.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[2]
TABLE = "tiny"
GATES = ("fidelity", "privacy", "validity")
CHILD_TIMEOUT_S = 300


def _model(seed: int, *, batch_size: int = 50_000) -> ModelSpec:
    # The seed only changes the sample (the split and the fit are done once, by the fixture).
    return ModelSpec(
        name=TABLE,
        unique_id=f"model.races.{TABLE}",
        relation=f"main.{TABLE}",
        spec=TableSpec(seed=seed, batch_size=batch_size),
        columns={},
        unique_columns=frozenset({"id"}),
        not_null_columns=frozenset({"id"}),
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _temps(home: SynthHome) -> list[str]:
    return sorted(p.name for p in home.table_dir(TABLE).iterdir() if p.name.endswith(".tmp"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A home with the tiny table split and fitted (MLflow in the home's SQLite store)."""
    root = tmp_path_factory.mktemp("races")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 100, 400)
    real = pd.DataFrame(
        {
            "id": np.arange(400),
            "x": x,
            "y": x + rng.normal(0, 20, 400),
            "c": rng.choice(["a", "b", "c"], 400),
        }
    )
    warehouse = root / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.register("real", real)
        con.execute(f"create table {TABLE} as select * from real")
    home = SynthHome(root / "home").ensure()
    lifecycle.split_table(home=home, warehouse=Warehouse(path=warehouse), model=_model(1))
    lifecycle.train_table(home=home, model=_model(1), tracking_uri=home.mlflow_tracking_uri)
    return root


@pytest.fixture
def home(trained, tmp_path) -> SynthHome:
    shutil.copytree(trained / "home", tmp_path / "home")
    return SynthHome(tmp_path / "home")


# ------------------------------------------------------------------ the refreshing processes


def _gates(home: SynthHome, model: ModelSpec, log: list) -> None:
    for kind in GATES:
        v = lifecycle.evaluate_gate(
            home=home, model=model, kind=kind, expectations_dir=home.root / "expectations",
            tracking_uri=None,
        )  # fmt: skip
        log.append(["verdict", v.candidate_id, kind, v.passed])


def refresh_loop(root: str, seed: int, rounds: int, log_path: str, go: str) -> None:
    """A refresh in a process of its own: ``rounds`` x (sample, gates, publish)."""
    home, model, log = SynthHome(Path(root)), _model(seed), []
    Path(f"{log_path}.ready").touch()
    while not Path(go).exists():  # both start together, once imported
        time.sleep(0.01)
    for _ in range(rounds):
        try:
            log.append(["sampled", lifecycle.sample_table(home=home, model=model).candidate_id])
            _gates(home, model, log)
            release = lifecycle.publish_table(home=home, model=model)
            log.append(["published", release.version, release.manifest["candidate_id"]])
        except SynthPlatformError as exc:  # anything else is a crash: the test sees it
            log.append(["refused", type(exc).__name__, str(exc)])
    Path(log_path).write_text(json.dumps(log))


class SlowSynthesizer:
    """Delegates to a fitted synthesizer, slowly, counting the batches sampled in ``marker``."""

    def __init__(self, inner: Any, marker: Path) -> None:
        self.inner, self.marker, self.batches = inner, marker, 0

    def reset_sampling(self) -> None:
        self.inner.reset_sampling()

    def _set_random_state(self, seed: int) -> None:
        self.inner._set_random_state(seed)

    def sample(self, num_rows: int) -> Any:
        out = self.inner.sample(num_rows=num_rows)
        self.batches += 1
        self.marker.write_text(str(self.batches))
        time.sleep(0.2)
        return out


def sample_and_die(root: str, seed: int, kill_at: str, marker: str) -> None:
    """Sample a new candidate and get SIGKILLed at ``kill_at``: ``writing`` (by the test,
    while batches are written), ``before_info`` (file in place, candidate.json not yet
    written) or ``after_info`` (candidate complete, no gate run yet)."""
    home = SynthHome(Path(root))
    model = _model(seed, batch_size=20)  # 400 rows in 20 batches
    if kill_at == "writing":
        with open(lifecycle.paths_for(home, TABLE).model, "rb") as fh:
            slow = SlowSynthesizer(cloudpickle.load(fh), Path(marker))
        lifecycle.sample_table(home=home, model=model, synthesizer=slow)
        return
    write_json = lifecycle._write_json

    def dying_write(path: Path, payload: dict) -> None:
        if path.name == "candidate.json" and kill_at == "before_info":
            os.kill(os.getpid(), signal.SIGKILL)
        write_json(path, payload)
        if path.name == "candidate.json" and kill_at == "after_info":
            os.kill(os.getpid(), signal.SIGKILL)

    lifecycle._write_json = dying_write
    lifecycle.sample_table(home=home, model=model)


def _spawn(function: str, *args: Any) -> subprocess.Popen:
    code = textwrap.dedent(
        f"""
        from tests.integration.test_races import {function}
        {function}(*{args!r})
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def _wait(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"child {proc.pid} hung:\n{err[-4000:]}")
    return proc.returncode, err


def _refresh_here(home: SynthHome, model: ModelSpec) -> tuple[str, Any]:
    """sample -> gates -> publish in this process; returns the approved id and the release."""
    log: list = []
    cid = lifecycle.sample_table(home=home, model=model).candidate_id
    _gates(home, model, log)
    assert all(passed for *_, passed in log), log
    return cid, lifecycle.publish_table(home=home, model=model)


def _assert_store(home: SynthHome, approved: set[str]) -> None:
    """Every release hashes to an approved candidate id; every one of them is readable."""
    releases = list_releases(home.public_dir, TABLE)
    assert releases
    with connect(home.public_dir) as con:
        for rel in releases:
            digest = _sha256(rel.data)
            assert digest == rel.manifest["candidate_id"] == rel.manifest["data_sha256"]
            assert digest in approved, f"{rel.version}: bytes {digest[:12]} no gate approved"
            assert all(s["passed"] for s in rel.manifest["scores"].values())
            view = f"{TABLE}__{rel.version}"
            assert con.sql(f"select count(*) from {view}").fetchall()[0][0] == rel.manifest["rows"]
        assert con.sql(f"select count(*) from {TABLE}").fetchall()[0][0] > 0


# ------------------------------------------------------------------------------ the tests


def test_two_refreshes_at_once_publish_only_bytes_every_gate_approved(home, tmp_path):
    go = tmp_path / "go"
    logs = {seed: tmp_path / f"refresh-{seed}.json" for seed in (4, 5)}
    procs = [_spawn("refresh_loop", str(home.root), s, 4, str(p), str(go)) for s, p in logs.items()]
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while not all(Path(f"{p}.ready").exists() for p in logs.values()):
        assert all(p.poll() is None for p in procs), [p.communicate()[1][-4000:] for p in procs]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    go.touch()
    for proc in procs:
        code, err = _wait(proc)
        assert code == 0, err[-4000:]  # no FileNotFoundError on temp files, no other crash
    entries = [e for p in logs.values() for e in json.loads(p.read_text())]
    verdicts: dict[str, dict[str, bool]] = {}
    for _, cid, kind, passed in (e for e in entries if e[0] == "verdict"):
        verdicts.setdefault(cid, {})
        verdicts[cid][kind] = verdicts[cid].get(kind, True) and passed
    approved = {cid for cid, v in verdicts.items() if set(v) == set(GATES) and all(v.values())}
    published = [e for e in entries if e[0] == "published"]
    refused = [e for e in entries if e[0] == "refused"]
    # A refresh whose candidate the other replaced before its gates ran is refused; never
    # because the bytes changed under a verdict (the locks order the steps).
    assert {e[1] for e in refused} <= {"GateFailedError"}, refused
    assert published and len(published) + len(refused) == 8
    assert {e[2] for e in published} <= approved
    _assert_store(home, approved)
    assert len(list_releases(home.public_dir, TABLE)) == len(published)
    assert _temps(home) == []


@pytest.mark.parametrize("kill_at", ["writing", "before_info", "after_info"])
def test_sigkill_mid_sampling_then_publishing_never_publishes_unapproved_bytes(
    home, tmp_path, kill_at
):
    approved_id, first = _refresh_here(home, _model(1))
    marker = tmp_path / "batches"
    proc = _spawn("sample_and_die", str(home.root), 2, kill_at, str(marker))
    if kill_at == "writing":
        deadline = time.monotonic() + CHILD_TIMEOUT_S
        while not (marker.exists() and int(marker.read_text() or 0) >= 3):
            assert proc.poll() is None, proc.communicate()[1][-4000:]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    code, err = _wait(proc)
    assert code == -signal.SIGKILL, err[-4000:]
    if kill_at == "writing":
        assert _temps(home)  # the killed sampler's partial file, never the candidate
        assert _sha256(lifecycle.paths_for(home, TABLE).candidate) == approved_id
    try:
        release = lifecycle.publish_table(home=home, model=_model(1))
    except SynthPlatformError as exc:
        release, refused = None, exc
    if kill_at == "writing":
        # The previous candidate is intact, with its verdicts: publishing it is publishing
        # bytes every gate approved.
        assert release is not None and release.manifest["candidate_id"] == approved_id
    else:
        assert release is None, "published a candidate no gate has seen"
        expected = "candidate.json is missing" if kill_at == "before_info" else "not evaluated"
        assert expected in str(refused)
        assert latest_version(home.public_dir, TABLE) == first.version
    _assert_store(home, {approved_id})
    # The next refresh sweeps the dead sampler's files and publishes normally.
    new_id, _ = _refresh_here(home, _model(3))
    _assert_store(home, {approved_id, new_id})
    assert _temps(home) == []


def test_bytes_changed_after_the_gates_ran_are_refused(home):
    approved_id, first = _refresh_here(home, _model(6))
    lifecycle.sample_table(home=home, model=_model(7))
    _gates(home, _model(7), log := [])
    assert all(v[-1] for v in log)
    candidate = lifecycle.paths_for(home, TABLE).candidate
    # Same rows, other bytes (a process outside the lifecycle rewrote the file).
    pq.write_table(pq.read_table(candidate), candidate, compression="gzip")
    with pytest.raises(
        PublicationError, match="candidate bytes changed since the gates ran; re-run the checks"
    ):
        lifecycle.publish_table(home=home, model=_model(7))
    assert latest_version(home.public_dir, TABLE) == first.version
    _assert_store(home, {approved_id})
    # A gate refuses to bind a verdict to bytes the sampler did not record.
    with pytest.raises(SourceError, match=r"changed since sampling.*tiny_synthetic again"):
        lifecycle.evaluate_gate(
            home=home, model=_model(7), kind="validity",
            expectations_dir=home.root / "expectations", tracking_uri=None,
        )  # fmt: skip
    assert _temps(home) == []  # the publisher's private snapshot is gone too


# ------------------------------------------------------------------------- a synthesis group


def group_models() -> tuple[Any, dict[str, ModelSpec]]:
    """`families` <- `kids` (kids.family_id -> families.id): a two-table group (HMA)."""
    from synth_platform.lib.multitable import groups_from_specs

    def model(name: str, key: str, rels: tuple = ()) -> ModelSpec:
        return ModelSpec(
            name=name, unique_id=f"model.races.{name}", relation=f"main.{name}",
            spec=TableSpec(seed=1, thresholds={"nndr": 0.3, "cardinality": 0.6}), columns={},
            unique_columns=frozenset({key}), not_null_columns=frozenset({key}), relationships=rels,
        )  # fmt: skip

    models = {
        "families": model("families", "id"),
        "kids": model("kids", "kid_id", (("family_id", "families", "id"),)),
    }
    return groups_from_specs(list(models.values()))[0], models


@pytest.fixture(scope="module")
def group_trained(tmp_path_factory) -> Path:
    from synth_platform.lib import group as G

    root = tmp_path_factory.mktemp("group_races")
    rng = np.random.default_rng(0)
    families = pd.DataFrame(
        {"id": np.arange(200), "x": rng.uniform(0, 100, 200), "c": rng.choice(["a", "b"], 200)}
    )
    family_id = np.repeat(families["id"].to_numpy(), rng.integers(0, 5, 200))
    kids = pd.DataFrame(
        {
            "kid_id": np.arange(len(family_id)),
            "family_id": family_id,
            "z": rng.normal(0, 1, len(family_id)) + families["x"].to_numpy()[family_id] / 50,
        }
    )
    warehouse = root / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        for name, frame in (("families", families), ("kids", kids)):
            con.register("frame", frame)
            con.execute(f"create table {name} as select * from frame")
            con.unregister("frame")
    group, models = group_models()
    home = SynthHome(root / "home").ensure()
    for t in group.tables:
        lifecycle.split_table(
            home=home, warehouse=Warehouse(path=warehouse), model=models[t],
            parents=G.parent_keys(group, t),
        )  # fmt: skip
    G.train_group(home=home, group=group, models=models, tracking_uri=home.mlflow_tracking_uri)
    return root


def _group_gates(home: SynthHome) -> None:
    from synth_platform.lib import group as G

    group, models = group_models()
    exp = home.root / "expectations"
    for t in group.tables:
        for kind in GATES:
            v = lifecycle.evaluate_gate(
                home=home, model=models[t], kind=kind, expectations_dir=exp, tracking_uri=None
            )
            assert v.passed, (t, kind, v.failures)
    for kind in G.GROUP_GATE_KINDS:
        v = G.evaluate_group_gate(
            home=home, group=group, models=models, table="kids", kind=kind,
            expectations_dir=exp, tracking_uri=None,
        )  # fmt: skip
        assert v.passed, (kind, v.failures)


def _train_and_sample_copy(group_trained: Path, home_dir: Path, models: dict) -> tuple:
    """Train and sample the group in a copy of the trained home: (home, sampled, log lines)."""
    from synth_platform.lib import group as G

    group, _ = group_models()
    shutil.copytree(group_trained / "home", home_dir)
    home = SynthHome(home_dir)
    lines: list[str] = []
    G.train_group(
        home=home, group=group, models=models, tracking_uri=home.mlflow_tracking_uri,
        progress=lines.append,
    )  # fmt: skip
    sampled = G.sample_group(home=home, group=group, models=models, progress=lines.append)
    return home, sampled, lines


def test_a_group_fitted_and_sampled_in_threads_gives_the_bytes_of_one_table_after_another(
    group_trained, tmp_path, monkeypatch
):
    from synth_platform.lib import group as G

    group, models = group_models()
    ids, threads = {}, {}
    for mode in ("threads", "one after another"):
        if mode != "threads":
            monkeypatch.setattr(G, "THREAD_SAFE_SYNTHESIZERS", frozenset())
        _, sampled, lines = _train_and_sample_copy(group_trained, tmp_path / mode, models)
        ids[mode] = {t: r.candidate_id for t, r in sampled.items()}
        threads[mode] = [x for x in lines if " tables in 2 threads " in x]
    assert ids["threads"] == ids["one after another"]
    if G._cores() >= 2:
        assert len(threads["threads"]) == 2 and not threads["one after another"]


def test_a_group_with_an_sdv_synthesizer_runs_its_tables_one_after_another(group_trained, tmp_path):
    """SDV's synthesizers seed and draw from the global random state: no threads for them."""
    import dataclasses

    group, models = group_models()
    kids = models["kids"]
    models["kids"] = dataclasses.replace(
        kids, spec=kids.spec.model_copy(update={"synthesizer": "gaussian_copula"})
    )
    home, sampled, lines = _train_and_sample_copy(group_trained, tmp_path / "home", models)
    assert not [x for x in lines if " threads " in x or " processes " in x]
    assert {t: r.rows for t, r in sampled.items()} == {
        t: pd.read_parquet(lifecycle.paths_for(home, t).candidate).shape[0] for t in group.tables
    }
    assert "gaussian_copula" in [x for x in lines if x.startswith("fit kids")][0]


def sample_group_and_die(root: str) -> None:
    """Sample the group and get SIGKILLed once the first table's new candidate is complete."""
    from synth_platform.lib import group as G

    group, models = group_models()
    write_json = lifecycle._write_json

    def dying_write(path: Path, payload: dict) -> None:
        write_json(path, payload)
        if path.name == "candidate.json" and path.parent.name == group.tables[0]:
            os.kill(os.getpid(), signal.SIGKILL)

    lifecycle._write_json = dying_write
    G.sample_group(home=SynthHome(Path(root)), group=group, models=models)


def test_a_group_publishes_only_what_it_sampled_and_every_gate_approved(group_trained, tmp_path):
    from synth_platform.lib import group as G
    from synth_platform.lib.errors import GateFailedError

    shutil.copytree(group_trained / "home", tmp_path / "home")
    home = SynthHome(tmp_path / "home")
    group, models = group_models()

    def assert_releases(approved: dict[str, set[str]], versions: dict[str, str]) -> None:
        for t in group.tables:
            assert latest_version(home.public_dir, t) == versions[t]
            for rel in list_releases(home.public_dir, t):
                assert _sha256(rel.data) == rel.manifest["candidate_id"]
                assert rel.manifest["candidate_id"] in approved[t]
        with connect(home.public_dir) as con:
            orphans = "select count(*) from kids k anti join families f on k.family_id = f.id"
            assert con.sql(orphans).fetchall()[0][0] == 0

    sampled = G.sample_group(home=home, group=group, models=models)
    _group_gates(home)
    first = G.publish_group_tables(home=home, group=group, models=models)
    approved = {t: {sampled[t].candidate_id} for t in group.tables}
    v1 = {t: r.version for t, r in first.items()}
    assert_releases(approved, v1)

    # 1. A table of the group rewritten on its own and re-gated: not the group's candidate.
    kids = lifecycle.paths_for(home, "kids").candidate
    lifecycle.replace_candidate(home=home, table="kids", frame=pd.read_parquet(kids).iloc[:-1])
    _group_gates(home)
    with pytest.raises(GateFailedError, match="kids: its candidate is not the one the group"):
        G.publish_group_tables(home=home, group=group, models=models)
    assert_releases(approved, v1)

    # 2. The group's sampler SIGKILLed halfway (first table new, the other old).
    proc = _spawn("sample_group_and_die", str(home.root))
    code, err = _wait(proc)
    assert code == -signal.SIGKILL, err[-4000:]
    with pytest.raises(GateFailedError, match="no complete sampling of the group is recorded"):
        G.publish_group_tables(home=home, group=group, models=models)
    assert_releases(approved, v1)

    # 3. Sampled and approved, then bytes changed behind the gates' back.
    sampled = G.sample_group(home=home, group=group, models=models)
    _group_gates(home)
    families = lifecycle.paths_for(home, "families").candidate
    pq.write_table(pq.read_table(families), families, compression="gzip")
    with pytest.raises(PublicationError, match="candidate bytes changed since the gates ran"):
        G.publish_group_tables(home=home, group=group, models=models)
    assert_releases(approved, v1)

    # A clean refresh publishes again.
    sampled = G.sample_group(home=home, group=group, models=models)
    _group_gates(home)
    second = G.publish_group_tables(home=home, group=group, models=models)
    for t in group.tables:
        approved[t].add(sampled[t].candidate_id)
    assert_releases(approved, {t: r.version for t, r in second.items()})
    assert not [p for t in group.tables for p in home.table_dir(t).glob("*.tmp")]
