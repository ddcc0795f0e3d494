"""The refresh lock and temporary files (synth_platform.lib.locks), across real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from synth_platform.lib import locks
from synth_platform.lib.locks import RefreshInProgressError, refresh_lock

REPO = Path(__file__).resolve().parents[2]
# `import synth_platform` loads Dagster and every library (~10 s); the lock holders below only
# need `synth_platform.lib.locks`, so they register the package without running its __init__.
_LIGHT_IMPORT = (
    "import sys, types\n"
    "pkg = types.ModuleType('synth_platform')\n"
    f"pkg.__path__ = [{str(REPO / 'synth_platform')!r}]\n"
    "sys.modules['synth_platform'] = pkg\n"
)


def _holder(directory: Path, *, shared: bool = False, seconds: float = 60) -> subprocess.Popen:
    """A process that takes the lock, says so on stdout, and holds it for ``seconds``."""
    code = _LIGHT_IMPORT + textwrap.dedent(
        f"""
        import sys, time
        from synth_platform.lib.locks import refresh_lock
        with refresh_lock({str(directory)!r}, what="table", name="t", step="sample",
                          shared={shared}):
            print("held", flush=True)
            time.sleep({seconds})
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def test_a_second_writer_gets_a_clear_error_naming_the_holder(tmp_path):
    proc = _holder(tmp_path)
    try:
        start = time.monotonic()
        with (
            pytest.raises(RefreshInProgressError) as err,
            refresh_lock(tmp_path, what="table", name="t", step="sample", timeout=0.5),
        ):
            pass
        assert time.monotonic() - start >= 0.5
        msg = str(err.value)
        assert f"table 't' is already being refreshed by pid {proc.pid} (sample, since " in msg
        assert "waited 0.5 s" in msg and "SYNTH_REFRESH_LOCK_TIMEOUT_S" in msg
    finally:
        _stop(proc)


def test_a_waiting_writer_gets_the_lock_when_the_holder_is_killed(tmp_path):
    proc = _holder(tmp_path)
    # flock belongs to the open file: the kernel drops it when SIGKILL ends the holder.
    killer = subprocess.Popen(
        [sys.executable, "-c", f"import os, time; time.sleep(0.5); os.kill({proc.pid}, 9)"]
    )
    try:
        start = time.monotonic()
        with refresh_lock(tmp_path, what="table", name="t", step="sample", timeout=30):
            waited = time.monotonic() - start
        assert 0.3 < waited < 20
    finally:
        killer.wait()
        _stop(proc)


def test_gates_share_the_lock_but_exclude_a_sampler(tmp_path, monkeypatch):
    proc = _holder(tmp_path, shared=True)
    try:
        with refresh_lock(tmp_path, what="table", name="t", step="privacy gate", shared=True):
            pass  # a second gate runs alongside
        monkeypatch.setenv(locks.TIMEOUT_ENV, "0")
        with (
            pytest.raises(RefreshInProgressError, match="already being refreshed"),
            refresh_lock(tmp_path, what="table", name="t", step="sample"),
        ):
            pass
    finally:
        _stop(proc)


def test_the_lock_is_reentrant_in_one_thread_and_cannot_be_upgraded(tmp_path):
    with (
        refresh_lock(tmp_path, what="group", name="g", step="group sample"),
        refresh_lock(tmp_path, what="group", name="g", step="sample", timeout=0),
        refresh_lock(tmp_path, what="group", name="g", step="x", shared=True, timeout=0),
    ):
        pass
    with (
        refresh_lock(tmp_path, what="group", name="g", step="gate", shared=True),
        pytest.raises(RuntimeError, match="holds it shared"),
        refresh_lock(tmp_path, what="group", name="g", step="sample", timeout=0),
    ):
        pass
    # Released: another process can take it at once.
    _stop(_holder(tmp_path))


def test_a_bad_timeout_setting_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv(locks.TIMEOUT_ENV, "soon")
    with (
        pytest.raises(locks.SynthPlatformError, match="SYNTH_REFRESH_LOCK_TIMEOUT_S='soon'"),
        refresh_lock(tmp_path, what="table", name="t", step="sample"),
    ):
        pass


def test_temporary_names_are_unique_and_removed_on_error(tmp_path):
    target = tmp_path / "candidate.parquet"
    a, b = locks.temp_path(target), locks.temp_path(target)
    assert a != b and a.parent == b.parent == tmp_path
    assert a.name.startswith(".candidate.parquet.") and a.name.endswith(".tmp")
    with pytest.raises(ValueError), locks.removed_on_error(a):
        a.write_text("partial")
        raise ValueError("boom")
    assert not a.exists()


def test_stale_temps_of_dead_writers_are_swept_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".candidate.parquet.{dead.pid}.{'a' * 32}.tmp"
    mine = locks.temp_path(tmp_path / "candidate.parquet")
    other = tmp_path / "candidate.parquet.tmp"  # not ours: left alone
    for p in (stale, mine, other):
        p.write_text("x")
    assert locks.sweep_stale_temps(tmp_path) == [stale]
    assert not stale.exists() and mine.exists() and other.exists()


def test_sigkill_leaves_no_lock_behind(tmp_path):
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with refresh_lock(tmp_path, what="table", name="t", step="sample", timeout=0):
        pass
