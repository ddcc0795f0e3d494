"""Killed runs do not stay STARTED: the example's dagster.yaml turns on Dagster run monitoring,
and a real `dagster-daemon` marks a run whose process was SIGKILLed as failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config_schema

from bank_example.run import DAGSTER_YAML, MARKER, prepare_dagster_home

DEADLINE_S = 90
DAGSTER_DAEMON = str(Path(sys.executable).with_name("dagster-daemon"))

SLEEPY = """\
import time

import dagster as dg


@dg.op
def nap():
    time.sleep(600)


@dg.job
def sleepy():
    nap()


defs = dg.Definitions(jobs=[sleepy])
"""


def test_the_example_dagster_yaml_enables_run_monitoring(tmp_path, monkeypatch):
    config = yaml.safe_load(DAGSTER_YAML)
    assert process_config(dagster_instance_config_schema(), config).success
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["max_resume_run_attempts"] == 0  # the default launcher cannot resume
    assert monitoring["max_runtime_seconds"] > 0  # what fails a run nobody reports on
    # A dagster.yaml written by an earlier version gets the block; a user's own is left alone.
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    old = tmp_path / "old" / "dagster"
    old.mkdir(parents=True)
    (old / "dagster.yaml").write_text(f"{MARKER} old\ntelemetry:\n  enabled: false\n")
    prepare_dagster_home(tmp_path / "old")
    assert yaml.safe_load((old / "dagster.yaml").read_text())["run_monitoring"] == monitoring
    mine = tmp_path / "mine" / "dagster"
    mine.mkdir(parents=True)
    (mine / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    prepare_dagster_home(tmp_path / "mine")
    assert "run_monitoring" not in (mine / "dagster.yaml").read_text()


def _status(dagster_home: Path, run_id: str | None = None) -> dict[str, str]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = [instance.get_run_by_id(run_id)] if run_id else instance.get_runs()
        return {r.run_id: r.status.value for r in runs if r is not None}


def test_a_killed_run_is_marked_failed_by_the_daemon(tmp_path):
    """A run executed in process (as `make demo` does) is SIGKILLed: no code server is left to
    report it, so only run monitoring can end it; with the example's settings (timings
    shortened) a real `dagster-daemon` marks it failed."""
    start = time.monotonic()
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    config = yaml.safe_load(DAGSTER_YAML)
    config["run_monitoring"].update({"max_runtime_seconds": 2, "poll_interval_seconds": 1})
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "sleepy.py").write_text(SLEEPY)
    # Create the SQLite storages once, before any other process opens them: two processes that
    # both find a fresh schedule database stamp its alembic version twice, and every later open
    # then fails with "more than one head" (seen once in CI, from the polling below racing the run).
    _status(dagster_home)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    run = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import dagster as dg
            from sleepy import sleepy
            sleepy.execute_in_process(instance=dg.DagsterInstance.get())
            """
        )],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        while "STARTED" not in _status(dagster_home).values():
            assert run.poll() is None, run.communicate()[1][-3000:]
            assert time.monotonic() - start < DEADLINE_S, "the run never started"
            time.sleep(0.2)
    finally:
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
    (run_id,) = _status(dagster_home)
    assert _status(dagster_home, run_id)[run_id] == "STARTED"  # nobody reports the death

    log = open(tmp_path / "daemon.log", "w")  # noqa: SIM115
    daemon = subprocess.Popen(
        [DAGSTER_DAEMON, "run", "-f", "sleepy.py"], cwd=tmp_path, env=env,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        while (status := _status(dagster_home, run_id)[run_id]) not in ("FAILURE", "CANCELED"):
            if daemon.poll() is not None or time.monotonic() - start > DEADLINE_S:
                pytest.fail(
                    f"run still {status} after {time.monotonic() - start:.0f} s:\n"
                    + (tmp_path / "daemon.log").read_text()[-4000:]
                )
            time.sleep(0.5)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)  # the daemon's own session (start_new_session)
            daemon.wait()
        log.close()
    assert status == "FAILURE"
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        messages = [e.message or "" for e in instance.all_logs(run_id)]
    assert any("maximum runtime" in m for m in messages), messages[-5:]
