import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_platform.lib.evaluation import evaluate_fidelity, evaluate_privacy
from synth_platform.lib.report import GateLine, _correlation_matrix, render_report, write_report

from .evaluation._tables import CATEGORICAL, DATETIME, NUMERIC, mixed_table

COLUMNS = {"numeric": NUMERIC, "datetime": DATETIME, "categorical": CATEGORICAL}
HOSTILE = "<script>alert(1)</script>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _gates(overall: float, dcr_share: float) -> list[GateLine]:
    return [
        GateLine("fidelity", "overall", overall, 0.8, "min", overall >= 0.8),
        GateLine("privacy", "dcr_share", dcr_share, 0.123456, "max", False),
        GateLine("validity", "failed_expectations", 0, 0, "max", True),
        GateLine("utility", "auc_ratio", None, None, "min", True),
    ]


def _render(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    with_privacy: bool = True,
    table: str = "accounts",
    context: dict[str, str] | None = None,
    gates: list[GateLine] | None = None,
    **columns,
) -> str:
    columns = columns or COLUMNS
    fidelity = evaluate_fidelity(real=real, synthetic=synthetic, **columns)
    privacy = None
    if with_privacy:
        holdout = mixed_table(len(real), seed=9)
        privacy = evaluate_privacy(train=real, holdout=holdout, synthetic=synthetic, **columns)
    return render_report(
        table=table,
        real=real,
        synthetic=synthetic,
        fidelity=fidelity,
        privacy=privacy,
        gates=gates if gates is not None else _gates(fidelity.overall, 0.5),
        context=context if context is not None else {"version": "v7", "seed": "0"},
        **columns,
    )


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"src='data:image/png;base64,([^']+)'", html)]


def _gate_rows(html: str) -> list[tuple[str, list[str]]]:
    rows = re.findall(r"<tr class='gate (pass|fail)'>(.*?)</tr>", html)
    return [(status, re.findall(r"<td[^>]*>(.*?)</td>", cells)) for status, cells in rows]


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    return mixed_table(300, seed=1), mixed_table(250, seed=2, income_shift=3000.0)


@pytest.fixture(scope="module")
def report(tables) -> str:
    return _render(*tables)


def test_every_column_has_a_chart_and_caption(report):
    for name in [*NUMERIC, *DATETIME, *CATEGORICAL]:
        assert f"<b>{name}</b>" in report
    for name in NUMERIC + DATETIME:
        assert f"alt='distribution of {name}'" in report
    for name in CATEGORICAL:
        assert f"alt='category shares of {name}'" in report
    assert "chart unavailable" not in report
    assert "KSComplement" in report and "TVComplement" in report


def test_one_png_per_column_plus_heatmap_and_dcr(report):
    images = _images(report)
    n_columns = len(NUMERIC) + len(DATETIME) + len(CATEGORICAL)
    assert len(images) == n_columns + 2
    assert all(image.startswith(PNG_MAGIC) for image in images)
    assert "alt='correlation difference heatmap'" in report
    assert "alt='distance to closest record histogram'" in report


def test_self_contained(report):
    assert "<script" not in report
    assert "http://" not in report and "https://" not in report
    assert report.startswith("<!DOCTYPE html>")


def test_a_row_per_gate_with_threshold_and_result(report):
    rows = _gate_rows(report)
    assert [cells[:2] for _, cells in rows] == [
        ["fidelity", "overall"],
        ["privacy", "dcr_share"],
        ["validity", "failed_expectations"],
        ["utility", "auc_ratio"],
    ]
    status = {cells[1]: (s, cells) for s, cells in rows}
    assert status["dcr_share"][0] == "fail"
    assert status["dcr_share"][1][3] == "&le; 0.1235"
    assert status["dcr_share"][1][4] == "FAIL"
    assert status["failed_expectations"][0] == "pass"
    assert status["failed_expectations"][1][3] == "&le; 0"
    assert status["auc_ratio"][1][2:4] == ["&mdash;", "&mdash;"]
    assert status["overall"][1][3] == "&ge; 0.8"
    verdict = re.search(r"<div class='verdict (\w+)'>(.*?)</div>", report)
    assert verdict is not None and verdict.group(1) == "fail"
    assert "privacy/dcr_share" in verdict.group(2)
    assert "validity/failed_expectations" not in verdict.group(2)


def test_verdict_passes_when_every_gate_passes(tables):
    gates = [GateLine("fidelity", "overall", 0.9, 0.8, "min", True)]
    html = _render(*tables, with_privacy=False, gates=gates)
    assert "<div class='verdict pass'>" in html
    assert "FAIL" not in html


def test_context_and_scores_are_shown(tables):
    html = _render(*tables, context={"mlflow_run_id": "abc123", "synthesizer": "GaussianCopula"})
    assert "<dt>mlflow_run_id</dt><dd>abc123</dd>" in html
    assert "<dt>synthesizer</dt><dd>GaussianCopula</dd>" in html
    assert (
        "DCR share" in html and "NNDR median" in html and "exact copies of rare train rows" in html
    )


def test_hostile_names_are_escaped(tables):
    real, synthetic = (t.copy() for t in tables)
    renames = {"age": HOSTILE, "segment": "seg\"'&<b>", "score": "$\\frac{a}{$"}
    for frame in (real, synthetic):
        frame.rename(columns=renames, inplace=True)
        frame.loc[:30, "seg\"'&<b>"] = "<img src=x onerror=alert(2)>"
    columns = {
        "numeric": [renames.get(c, c) for c in NUMERIC],
        "datetime": DATETIME,
        "categorical": [renames.get(c, c) for c in CATEGORICAL],
    }
    fidelity = evaluate_fidelity(real=real, synthetic=synthetic, **columns)
    html = render_report(
        table=HOSTILE,
        real=real,
        synthetic=synthetic,
        fidelity=fidelity,
        privacy=None,
        gates=[GateLine(HOSTILE, HOSTILE, 1.0, 0.5, "min", False)],
        context={HOSTILE: HOSTILE},
        **columns,
    )
    assert HOSTILE not in html
    assert "<script" not in html
    assert "seg\"'&<b>" not in html  # the raw name would open a tag
    assert "<img src=x" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5
    assert "seg&quot;&#x27;&amp;&lt;b&gt;" in html
    # '$' in names must not break matplotlib's mathtext: every column still gets its chart.
    assert "chart unavailable" not in html
    assert len(_images(html)) == len(NUMERIC) + len(DATETIME) + len(CATEGORICAL) + 1


def test_without_privacy(tables):
    html = _render(*tables, with_privacy=False)
    assert "Privacy was not evaluated" in html
    assert "distance to closest record histogram" not in html
    assert len(_images(html)) == len(NUMERIC) + len(DATETIME) + len(CATEGORICAL) + 1


def test_without_numeric_columns(tables):
    real, synthetic = tables
    columns = {"numeric": [], "datetime": [], "categorical": CATEGORICAL}
    html = _render(real, synthetic, **columns)
    assert "no correlation heatmap" in html
    assert "correlation difference heatmap" not in html
    assert len(_images(html)) == len(CATEGORICAL) + 1  # one per column and the DCR chart
    assert "chart unavailable" not in html


def test_subsampling_is_seeded_and_capped(tables):
    real, synthetic = tables
    fidelity = evaluate_fidelity(real=real, synthetic=synthetic, **COLUMNS)
    kwargs = dict(
        table="t",
        real=real,
        synthetic=synthetic,
        fidelity=fidelity,
        privacy=None,
        gates=[],
        context={},
        max_rows=40,
        **COLUMNS,
    )
    first, second = render_report(**kwargs, seed=3), render_report(**kwargs, seed=3)
    assert first == second
    assert render_report(**kwargs, seed=4) != first
    assert "at most 40 rows per table" in first
    assert "No gate was evaluated" in first
    with pytest.raises(ValueError, match="max_rows"):
        render_report(**{**kwargs, "max_rows": 0})


def test_missing_column_is_rejected(tables):
    real, synthetic = tables
    fidelity = evaluate_fidelity(real=real, synthetic=synthetic, **COLUMNS)
    with pytest.raises(ValueError, match="synthetic data lacks"):
        render_report(
            table="t",
            real=real,
            synthetic=synthetic.drop(columns=["region"]),
            fidelity=fidelity,
            privacy=None,
            gates=[],
            context={},
            **COLUMNS,
        )


def test_out_of_range_and_unseen_values_are_noted(tables):
    real, synthetic = (t.copy() for t in tables)
    synthetic.loc[:49, "score"] = 1e6  # 20% far outside the real range
    synthetic.loc[:24, "region"] = "atlantis"  # 10% in a category the real data lacks
    html = _render(real, synthetic, with_privacy=False)
    lo, hi = real["score"].min(), real["score"].max()
    outside = ((synthetic["score"] < lo) | (synthetic["score"] > hi)).mean()
    assert outside >= 0.2
    assert f"{100 * outside:.1f}% of synthetic values lie outside the real range" in html
    assert "1 category absent from the real data hold 10.0% of synthetic values" in html


def test_datetime_strings_and_all_missing_columns(tables):
    real, synthetic = (t.copy() for t in tables)
    for frame in (real, synthetic):
        frame["signup"] = frame["signup"].dt.strftime("%Y-%m-%d")
    real["income"] = np.nan
    html = _render(real, synthetic, with_privacy=False)
    assert "alt='distribution of signup'" in html
    assert "no non-missing real values to plot" in html  # income
    assert "chart unavailable" not in html


def test_heatmap_uses_fidelity_correlations_and_falls_back_to_data(tables):
    real, synthetic = tables
    fidelity = evaluate_fidelity(real=real, synthetic=synthetic, **COLUMNS)
    continuous = [c for c in real.columns if c in NUMERIC + DATETIME]
    kinds = dict.fromkeys(NUMERIC, "numeric") | dict.fromkeys(DATETIME, "datetime")
    from_pairs = _correlation_matrix(continuous, kinds, real, synthetic, fidelity.pairs)
    from_data = _correlation_matrix(continuous, kinds, real, synthetic, fidelity.pairs.iloc[:0])
    np.testing.assert_allclose(from_pairs, from_data, atol=1e-9)
    assert np.nanmax(from_pairs) > 0.0


def test_write_report_replaces_atomically(tmp_path: Path):
    target = tmp_path / "reports" / "accounts.html"
    assert write_report(target, "<p>one</p>") == target
    assert write_report(target, "<p>two \u00e9</p>") == target
    assert target.read_text(encoding="utf-8") == "<p>two \u00e9</p>"
    assert sorted(p.name for p in target.parent.iterdir()) == ["accounts.html"]
