import os

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


def test_a_big_group_runs_its_tables_in_parallel_processes_and_a_small_one_here():
    calls = {"a": {"x": 1}, "b": {"x": 2}}
    assert G._in_parallel(os.getpid, {}, rows=10**9, what="w", progress=None) == {}
    assert (
        G._in_parallel(_pid_and, calls, rows=G.PARALLEL_MIN_ROWS - 1, what="w", progress=None) == {}
    )
    if (os.cpu_count() or 1) < 2:
        return
    lines: list[str] = []
    out = G._in_parallel(
        _pid_and, calls, rows=G.PARALLEL_MIN_ROWS, what="fit g", progress=lines.append
    )
    assert {t: x for t, (_, x) in out.items()} == {"a": 1, "b": 2}
    assert all(pid != os.getpid() for pid, _ in out.values())
    assert lines[0].startswith("fit g: 2 tables in 2 processes")


def _pid_and(x: int) -> tuple[int, int]:
    return os.getpid(), x
