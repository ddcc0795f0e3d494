import os
import threading
import time

import pytest

from synth_platform.lib import group as G
from synth_platform.lib.progress import Meter


def test_meter_reports_done_percent_and_rate_once_at_the_end():
    lines: list[str] = []
    meter = Meter(lines.append, stage="sample t", total=1_000, every=3600)
    meter.set(400)
    assert lines == []  # within `every` seconds: quiet
    meter.set(1_000)
    meter.set(1_000)
    assert len(lines) == 1
    assert lines[0].startswith("sample t: 1,000 / 1,000 rows (100%), ") and "rows/s" in lines[0]
    late = Meter(lines.append, stage="re-key g", total=0, every=3600)
    late.set(5, total=10)
    late.set(10, total=10)
    assert lines[-1].startswith("re-key g: 10 / 10 rows (100%)")


def test_a_slow_stage_shows_its_rate_not_zero(monkeypatch):
    import synth_platform.lib.progress as P

    clock = iter([0.0, 400.0, 400.0])
    monkeypatch.setattr(P.time, "perf_counter", lambda: next(clock))
    lines: list[str] = []
    meter = Meter(lines.append, stage="fit wide", total=100, unit="columns")
    meter.set(100)
    assert lines == ["fit wide: 100 / 100 columns (100%), 0.25 columns/s, 400.0 s"]
    monkeypatch.undo()
    assert "0.00 columns/s" in Meter(None, stage="s", total=1, unit="columns").line()


def test_a_big_group_of_sdv_tables_runs_them_in_processes_and_a_small_one_here():
    calls = {"a": {"x": 1}, "b": {"x": 2}}
    small = {"a": 1, "b": G.PARALLEL_MIN_ROWS - 2}
    assert G._in_parallel(os.getpid, {}, rows={}, what="w", progress=None, threads=True) == {}
    assert G._in_parallel(_pid_and, calls, rows=small, what="w", progress=None, threads=False) == {}
    if G._cores() < 2:
        return
    lines: list[str] = []
    out = G._in_parallel(
        _pid_and, calls, rows={"a": 1, "b": G.PARALLEL_MIN_ROWS}, what="fit g",
        progress=lines.append, threads=False,
    )  # fmt: skip
    assert {t: x for t, (_, x) in out.items()} == {"a": 1, "b": 2}
    assert all(pid != os.getpid() for pid, _ in out.values())
    assert lines[0].startswith("fit g: 2 tables in 2 processes")


def test_thread_safe_tables_run_at_once_in_threads_biggest_first_whatever_their_size():
    if G._cores() < 2:
        return
    started: list[str] = []
    both = threading.Barrier(2, timeout=10)  # each call waits for the other: they overlap

    def fit(name: str, progress) -> tuple[str, str]:
        started.append(name)
        both.wait()
        progress(f"{name} halfway")
        return name, threading.current_thread().name

    lines: list[str] = []
    out = G._in_parallel(
        fit, {"small": {"name": "small"}, "big": {"name": "big"}}, rows={"small": 5, "big": 50},
        what="fit g", progress=lines.append, threads=True,
    )  # fmt: skip
    assert list(out) == ["small", "big"]  # the callers' order
    assert started == ["big", "small"]  # the biggest first
    assert all(thread.startswith("group") for _, thread in out.values())
    assert lines[0] == "fit g: 2 tables in 2 threads (55 rows)"
    assert {"big halfway", "small halfway"} <= set(lines)
    assert [x for x in lines if x.startswith("fit g: big done, ")]


def test_a_failing_table_raises_its_own_error_once_no_table_is_running():
    if G._cores() < 2:
        return
    other_started = threading.Event()

    def fit(name: str, progress) -> str:
        if name == "a":
            other_started.wait(10)
            raise ValueError("table 'a': bad column 'x'")
        other_started.set()
        time.sleep(0.5)  # still running when "a" fails
        return name

    calls = {t: {"name": t} for t in ("a", "b", "c")}
    with pytest.raises(ValueError, match="table 'a': bad column 'x'"):
        G._in_parallel(
            fit, calls, rows={"a": 3, "b": 2, "c": 1}, what="w", progress=None, threads=True
        )
    # No table is still being fitted (or writing its files) behind the failed step's back.
    assert not [t for t in threading.enumerate() if t.name.startswith("group")]


def _pid_and(x: int) -> tuple[int, int]:
    return os.getpid(), x
