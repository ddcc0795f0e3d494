"""Self-contained HTML evaluation report for one synthetic release of one table.

:func:`render_report` turns the fidelity and privacy results that the gates were decided on
into a single HTML document that opens offline: every chart is a PNG drawn with matplotlib's
Agg renderer and embedded as a base64 ``data:`` URI, and the styling is inline CSS (no
scripts, fonts or other network resources). :func:`write_report` writes it atomically.

The report holds, in order:

1. a header with the free-form ``context`` (version, seed, synthesizer, run id, ...) and the
   verdict, followed by one row per gate (value, threshold, direction, pass/fail) and the
   fidelity/privacy summary figures;
2. one chart per column: overlaid density histograms on the real data's bin edges for numeric
   and datetime columns, grouped bars of category shares (top 15 by real frequency plus
   "other") for categorical ones, captioned with the column's shape score and missing shares;
3. a heatmap of ``|r_real - r_synthetic|`` (pairwise-complete Pearson, datetimes as int64 ns)
   over the numeric and datetime columns, and the counted pair trends with their scores;
4. overlaid histograms of the synthetic rows' distance to the closest train and holdout row,
   with the DCR share, NNDR median, exact copies and baseline protection.

The module is pure: it reads the frames and reports it is given and imports neither MLflow nor
Dagster. matplotlib is imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from synth_platform.lib.evaluation.fidelity import FidelityReport
    from synth_platform.lib.evaluation.privacy import PrivacyReport

__all__ = ["GateLine", "render_report", "write_report"]

Gate = Literal["fidelity", "privacy", "validity", "utility"]

_TOP_CATEGORIES = 15
_MAX_BINS = 40
_MIN_BINS = 5
_LABEL_CHARS = 28  # category and column labels inside charts are cut to this length
_DPI = 80
_REAL_COLOUR = "#1f77b4"
_SYNTHETIC_COLOUR = "#ff7f0e"
_TRAIN_COLOUR = "#d62728"
_HOLDOUT_COLOUR = "#2ca02c"


@dataclass(frozen=True)
class GateLine:
    """One gate check as the report shows it.

    Attributes:
        gate: The gate family: ``fidelity``, ``privacy``, ``validity`` or ``utility``.
        metric: The metric checked, e.g. ``overall`` or ``dcr_share``.
        value: The measured value (``None`` when it could not be computed).
        threshold: The threshold it is compared with (``None`` for an informational line).
        direction: ``"min"`` when the value must be at least the threshold, ``"max"`` when
            it must be at most the threshold.
        passed: Whether the check passed (decided by the caller, shown as is).
    """

    gate: str
    metric: str
    value: float | int | None
    threshold: float | None
    direction: Literal["min", "max"]
    passed: bool


def render_report(
    *,
    table: str,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    numeric: Sequence[str],
    datetime: Sequence[str],
    categorical: Sequence[str],
    fidelity: FidelityReport,
    privacy: PrivacyReport | None,
    gates: Sequence[GateLine],
    context: Mapping[str, str],
    max_rows: int = 50_000,
    seed: int = 0,
) -> str:
    """Render the evaluation report of one synthetic table as one self-contained HTML page.

    Charts are drawn from at most ``max_rows`` rows of each table, drawn without replacement
    with ``numpy.random.default_rng(seed)``; the scores shown are the ones in ``fidelity`` and
    ``privacy`` (computed on whatever rows the evaluators used), never recomputed, except
    for correlation pairs absent from ``fidelity.pairs``, which are computed on the sampled
    rows. Every user-supplied string (table, column and category names, context, gate names)
    is HTML-escaped, and matplotlib's mathtext is switched off so that ``$`` in a name is
    drawn literally. A chart that cannot be drawn is replaced by an error note rather than
    failing the whole report.

    Args:
        table: Table name for the title.
        real: The real table (typically the train split the fidelity was measured on).
        synthetic: The synthetic table.
        numeric: Numeric columns.
        datetime: Datetime columns (datetime dtype or strings pandas can parse).
        categorical: Categorical and boolean columns.
        fidelity: Result of :func:`~synth_platform.lib.evaluation.evaluate_fidelity`.
        privacy: Result of :func:`~synth_platform.lib.evaluation.evaluate_privacy`, or
            ``None`` when privacy was not evaluated (the section says so).
        gates: The gate checks, in display order.
        context: Key/value facts for the header (version, seed, synthesizer, run id, ...).
        max_rows: Row cap per table for the charts.
        seed: Seed for that subsampling.

    Returns:
        The HTML document.

    Raises:
        ValueError: If ``max_rows < 1``, a column is listed twice, or a listed column is
            missing from ``real`` or ``synthetic``.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    kinds = _kinds(numeric, datetime, categorical)
    for label, frame in (("real", real), ("synthetic", synthetic)):
        missing = [c for c in kinds if c not in frame.columns]
        if missing:
            raise ValueError(f"{label} data lacks column(s) {missing}")
    position = {name: i for i, name in enumerate(real.columns)}
    columns = sorted(kinds, key=lambda c: position[c])

    rng = np.random.default_rng(seed)
    real_sample = _subsample(real, columns, max_rows, rng)
    synthetic_sample = _subsample(synthetic, columns, max_rows, rng)
    shapes = {str(row.column): row for row in fidelity.shapes.itertuples(index=False)}

    with _matplotlib() as figure_factory:
        column_cards = [
            _column_card(
                name,
                kinds[name],
                real_sample[name],
                synthetic_sample[name],
                shapes.get(str(name)),
                figure_factory,
            )
            for name in columns
        ]
        continuous = [c for c in columns if kinds[c] != "categorical"]
        correlation = _correlation_section(
            continuous, kinds, real_sample, synthetic_sample, fidelity.pairs, figure_factory
        )
        privacy_section = _privacy_section(privacy, figure_factory)

    n_real, n_synthetic = len(real), len(synthetic)
    sampled = ""
    if n_real > max_rows or n_synthetic > max_rows:
        sampled = f" Charts use a seeded sample of at most {max_rows:,} rows per table."
    body = "\n".join(
        [
            f"<h1>Evaluation report: {_e(table)}</h1>",
            _context_list(context),
            _verdict(gates),
            "<h2>Gates</h2>",
            _gate_table(gates),
            "<h2>Scores</h2>",
            _score_table(fidelity, privacy),
            "<h2>Column shapes</h2>",
            f"<p class='note'>{n_real:,} real rows, {n_synthetic:,} synthetic rows.{sampled} "
            "Numeric and datetime columns: densities on the real data's bin edges; "
            "categorical columns: shares of non-missing values.</p>",
            _shape_table(fidelity.shapes),
            "<div class='grid'>",
            *column_cards,
            "</div>",
            "<h2>Column pair trends</h2>",
            correlation,
            "<h2>Privacy: distance to closest record</h2>",
            privacy_section,
        ]
    )
    return _page(_e(f"Evaluation report: {table}"), body)


def write_report(path: Path, html: str) -> Path:
    """Write ``html`` to ``path`` atomically (temporary file in the same folder, then rename).

    Parent folders are created. A reader never sees a partly written file: the content is
    flushed and fsynced to a temporary file next to ``path`` that :func:`os.replace` then
    moves over it.

    Args:
        path: Destination file.
        html: The document, written as UTF-8.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(html)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ------------------------------------------------------------------------------- helpers


def _e(value: object) -> str:
    """HTML-escape any value's string form (quotes included)."""
    return html.escape(str(value), quote=True)


def _kinds(
    numeric: Sequence[str], datetime: Sequence[str], categorical: Sequence[str]
) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for kind, names in (("numeric", numeric), ("datetime", datetime), ("categorical", categorical)):
        for name in names:
            if name in kinds:
                raise ValueError(f"column {name!r} is listed more than once")
            kinds[name] = kind
    return kinds


def _subsample(
    frame: pd.DataFrame, columns: list[str], max_rows: int, rng: np.random.Generator
) -> pd.DataFrame:
    frame = frame[columns]
    if len(frame) <= max_rows:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=max_rows, replace=False))]


def _fmt(value: object, digits: int = 4) -> str:
    """Numbers for display: integers as is, floats to ``digits`` significant digits."""
    if value is None:
        return "&mdash;"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "n/a"
        return f"{float(value):.{digits}g}"
    return _e(value)


def _share(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _label(value: object) -> str:
    """A chart label: string form, cut in the middle to ``_LABEL_CHARS`` characters.

    Keeping both ends tells apart names that share a long prefix or suffix.
    """
    text = str(value).replace("\n", " ")
    if len(text) <= _LABEL_CHARS:
        return text
    head = (_LABEL_CHARS - 1) // 2
    return text[:head] + "\u2026" + text[-(_LABEL_CHARS - 1 - head) :]


def _number(value: float, _position: object = None) -> str:
    """Tick label with 4 significant digits (no shared offset text that fixed margins clip)."""
    return f"{value:.4g}"


# ------------------------------------------------------------------------------- header


def _context_list(context: Mapping[str, str]) -> str:
    if not context:
        return ""
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in context.items())
    return f"<dl class='context'>{items}</dl>"


def _gate_name(line: GateLine) -> str:
    return f"{line.gate}/{line.metric}"


def _verdict(gates: Sequence[GateLine]) -> str:
    if not gates:
        return "<div class='verdict none'>No gate was evaluated.</div>"
    failed = [g for g in gates if not g.passed]
    if not failed:
        return f"<div class='verdict pass'>PASSED: all {len(gates)} gate checks passed.</div>"
    names = ", ".join(_e(_gate_name(g)) for g in failed)
    return (
        f"<div class='verdict fail'>FAILED: {len(failed)} of {len(gates)} gate checks "
        f"failed: {names}.</div>"
    )


def _gate_table(gates: Sequence[GateLine]) -> str:
    if not gates:
        return "<p class='note'>No gate checks.</p>"
    rows = []
    for g in gates:
        if g.threshold is None:
            rule = "&mdash;"
        else:
            rule = ("&ge; " if g.direction == "min" else "&le; ") + _fmt(g.threshold)
        status = "pass" if g.passed else "fail"
        rows.append(
            f"<tr class='gate {status}'><td>{_e(g.gate)}</td><td>{_e(g.metric)}</td>"
            f"<td class='num'>{_fmt(g.value)}</td><td class='num'>{rule}</td>"
            f"<td class='status'>{'PASS' if g.passed else 'FAIL'}</td></tr>"
        )
    return (
        "<table class='gates'><thead><tr><th>gate</th><th>metric</th><th>value</th>"
        "<th>threshold</th><th>result</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _score_table(fidelity: FidelityReport, privacy: PrivacyReport | None) -> str:
    counted = int(fidelity.pairs["counted"].sum()) if len(fidelity.pairs) else 0
    rows: list[tuple[str, str]] = [
        ("fidelity overall", _fmt(fidelity.overall)),
        ("fidelity column shapes", _fmt(fidelity.column_shapes)),
        (
            "fidelity column pair trends",
            f"{_fmt(fidelity.column_pair_trends)} ({counted} of {len(fidelity.pairs)} pairs "
            "counted)",
        ),
    ]
    if privacy is not None:
        rows += [
            ("DCR share (closer to train than holdout)", _fmt(privacy.dcr_share)),
            ("NNDR median", _fmt(privacy.nndr_median)),
            ("exact copies of rare train rows (< 5 share them)", _fmt(privacy.exact_copies_train)),
            ("copies of common combinations (5+ train rows)", _fmt(privacy.common_copies_train)),
            ("exact copies of holdout rows", _fmt(privacy.exact_copies_holdout)),
            ("baseline protection", _fmt(privacy.baseline_protection)),
        ]
    body = "".join(f"<tr><td>{k}</td><td class='num'>{v}</td></tr>" for k, v in rows)
    return f"<table class='scores'><tbody>{body}</tbody></table>"


def _shape_table(shapes: pd.DataFrame) -> str:
    if shapes.empty:
        return ""
    order = shapes.sort_values("score", na_position="first", kind="stable")
    rows = "".join(
        f"<tr><td>{_e(r.column)}</td><td>{_e(r.kind)}</td><td>{_e(r.metric)}</td>"
        f"<td class='num'>{_fmt(r.score)}</td><td class='num'>{_share(r.real_missing_share)}"
        f"</td><td class='num'>{_share(r.synthetic_missing_share)}</td></tr>"
        for r in order.itertuples(index=False)
    )
    return (
        "<details><summary>Shape scores, worst first</summary><table class='shapes'><thead>"
        "<tr><th>column</th><th>kind</th><th>metric</th><th>score</th><th>real missing</th>"
        f"<th>synthetic missing</th></tr></thead><tbody>{rows}</tbody></table></details>"
    )


# ------------------------------------------------------------------------------- figures


class _Figures:
    """Creates Agg figures and encodes them as ``<img>`` tags."""

    def __init__(self, figure_class: type[Figure]) -> None:
        self._figure_class = figure_class

    def new(
        self, width: float, height: float, margins: tuple[float, float, float, float] | None = None
    ) -> Figure:
        """A figure of ``width`` x ``height`` inches.

        With ``margins`` (left, bottom, right, top in figure fractions) the axes are placed
        there, which is about twice as fast to draw as the default constrained layout that
        fits labels of unknown width (category names, column names).
        """
        if margins is None:
            return self._figure_class(figsize=(width, height), dpi=_DPI, layout="constrained")
        figure = self._figure_class(figsize=(width, height), dpi=_DPI)
        left, bottom, right, top = margins
        figure.subplots_adjust(left=left, bottom=bottom, right=right, top=top)
        return figure

    @staticmethod
    def img(figure: Figure, alt: str) -> str:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=_DPI)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        return f"<img alt='{_e(alt)}' src='data:image/png;base64,{data}'>"


@contextmanager
def _matplotlib() -> Iterator[_Figures]:
    """Import matplotlib lazily and draw with Agg, mathtext off, without touching pyplot."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    class _AggFigure(Figure):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            FigureCanvasAgg(self)

    settings = {
        "text.parse_math": False,  # '$' in a column or category name is drawn literally
        "font.size": 9,
        "axes.titlesize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    with matplotlib.rc_context(settings):
        yield _Figures(_AggFigure)


def _safely(draw: Any, *args: Any) -> str:
    """Run a chart function; on failure return an escaped note instead of raising."""
    try:
        return draw(*args)
    except Exception as error:  # a broken chart must not lose the rest of the report
        return _error(error)


def _error(error: Exception) -> str:
    return f"<p class='error'>chart unavailable: {_e(type(error).__name__)}: {_e(error)}</p>"


def _as_float(series: pd.Series, kind: str) -> np.ndarray:
    """A numeric column as float64, a datetime one as int64 ns in float64; missing as NaN.

    Mirrors the evaluators' coercion: datetime strings are parsed by pandas, timezone-aware
    values are taken in UTC, non-numeric strings in a numeric column become missing.
    """
    if kind == "datetime":
        if not pd.api.types.is_datetime64_any_dtype(series):
            series = pd.to_datetime(series, errors="coerce", format="mixed")
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        ns = series.to_numpy(dtype="datetime64[ns]").view("int64")
        return np.where(ns == np.iinfo(np.int64).min, np.nan, ns.astype(np.float64))
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        series = pd.to_numeric(series, errors="coerce")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _continuous_values(series: pd.Series, kind: str) -> np.ndarray:
    """The finite values of a numeric or datetime column (see :func:`_as_float`)."""
    values = _as_float(series, kind)
    return values[np.isfinite(values)]


def _bin_edges(values: np.ndarray) -> np.ndarray:
    """Bin edges from the real values: unit bins for small integer ranges, else sqrt rule."""
    lo, hi = float(values.min()), float(values.max())
    if np.all(values == np.round(values)) and hi - lo + 1 <= _MAX_BINS:
        return np.arange(lo - 0.5, hi + 1.5)
    n_bins = int(np.clip(math.isqrt(values.size), _MIN_BINS, _MAX_BINS))
    return np.histogram_bin_edges(values, bins=n_bins)


def _column_card(
    name: str,
    kind: str,
    real: pd.Series,
    synthetic: pd.Series,
    shape: Any,
    figures: _Figures,
) -> str:
    caption = [f"<b>{_e(name)}</b> ({_e(kind)})"]
    if shape is not None:
        caption.append(
            f"{_e(shape.metric)} {_fmt(shape.score)}; missing: real "
            f"{_share(shape.real_missing_share)}, synthetic {_share(shape.synthetic_missing_share)}"
        )
    if kind == "categorical":
        chart, note = _categorical_chart(name, real, synthetic, figures)
    else:
        chart, note = _histogram_chart(name, kind, real, synthetic, figures)
    if note:
        caption.append(note)
    return f"<figure>{chart}<figcaption>{'<br>'.join(caption)}</figcaption></figure>"


def _histogram_chart(
    name: str, kind: str, real: pd.Series, synthetic: pd.Series, figures: _Figures
) -> tuple[str, str]:
    try:
        real_values = _continuous_values(real, kind)
        synthetic_values = _continuous_values(synthetic, kind)
    except Exception as error:  # unconvertible values: keep the rest of the report
        return _error(error), ""
    if real_values.size == 0:
        return "<p class='error'>no non-missing real values to plot</p>", ""
    edges = _bin_edges(real_values)
    outside = (synthetic_values < edges[0]) | (synthetic_values > edges[-1])
    note = ""
    if synthetic_values.size and outside.any():
        share = float(outside.mean())
        shown = "<0.1%" if share < 0.001 else f"{100 * share:.1f}%"
        note = f"{_e(shown)} of synthetic values lie outside the real range (not drawn)"

    def draw() -> str:
        # Datetime axes may carry an offset label (the year) that fixed margins would clip.
        margins = None if kind == "datetime" else (0.06, 0.12, 0.97, 0.97)
        figure = figures.new(4.8, 2.6, margins=margins)
        ax = figure.add_subplot()
        x_edges = edges
        if kind == "datetime":
            from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num

            x_edges = date2num(edges.astype("int64").astype("datetime64[ns]"))
            locator = AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        else:
            ax.xaxis.set_major_formatter(_number)
        for values, colour, label in (
            (real_values, _REAL_COLOUR, "real"),
            (synthetic_values, _SYNTHETIC_COLOUR, "synthetic"),
        ):
            inside = values[(values >= edges[0]) & (values <= edges[-1])]
            if inside.size == 0:
                continue
            density, _ = np.histogram(inside, bins=edges, density=True)
            _stairs(ax, density, x_edges, colour, label)
        ax.set_ylabel("density")
        ax.set_yticks([])
        ax.legend(loc="best", frameon=False)
        return figures.img(figure, f"distribution of {name}")

    return _safely(draw), note


def _stairs(ax: Axes, heights: np.ndarray, edges: np.ndarray, colour: str, label: str) -> None:
    ax.stairs(heights, edges, fill=True, alpha=0.35, color=colour)
    ax.stairs(heights, edges, color=colour, linewidth=1.2, label=label)


def _category_shares(
    real: pd.Series, synthetic: pd.Series
) -> tuple[list[str], np.ndarray, np.ndarray, str]:
    """Top categories by real share (plus "other") with real and synthetic shares."""
    real_counts = real.astype(object).value_counts(dropna=True)
    synthetic_counts = synthetic.astype(object).value_counts(dropna=True)
    # Group str-equal values (e.g. True and "True") so labels stay unique.
    real_counts = real_counts.groupby(real_counts.index.map(str), sort=False).sum()
    synthetic_counts = synthetic_counts.groupby(synthetic_counts.index.map(str), sort=False).sum()
    real_share = real_counts / max(int(real_counts.sum()), 1)
    synthetic_share = synthetic_counts / max(int(synthetic_counts.sum()), 1)
    order = real_share.sort_values(ascending=False, kind="stable")
    top = list(order.index[:_TOP_CATEGORIES])
    if len(top) < _TOP_CATEGORIES:  # room left: show the largest synthetic-only categories
        extra = synthetic_share.drop(labels=top, errors="ignore").sort_values(ascending=False)
        top += list(extra.index[: _TOP_CATEGORIES - len(top)])
    real_top = real_share.reindex(top, fill_value=0.0).to_numpy(dtype=float)
    synthetic_top = synthetic_share.reindex(top, fill_value=0.0).to_numpy(dtype=float)
    labels = [str(c) for c in top]
    real_other = max(1.0 - real_top.sum(), 0.0) if len(real_share) else 0.0
    synthetic_other = max(1.0 - synthetic_top.sum(), 0.0) if len(synthetic_share) else 0.0
    if real_other > 1e-12 or synthetic_other > 1e-12:
        labels.append("(other)")
        real_top = np.append(real_top, real_other)
        synthetic_top = np.append(synthetic_top, synthetic_other)
    unseen = synthetic_share.index.difference(real_share.index)
    note = ""
    if len(unseen):
        note = (
            f"{len(unseen)} categor{'y' if len(unseen) == 1 else 'ies'} absent from the real "
            f"data hold {100 * float(synthetic_share[unseen].sum()):.1f}% of synthetic values"
        )
    return labels, real_top, synthetic_top, note


def _categorical_chart(
    name: str, real: pd.Series, synthetic: pd.Series, figures: _Figures
) -> tuple[str, str]:
    labels, real_share, synthetic_share, note = _category_shares(real, synthetic)
    if not labels:
        return "<p class='error'>no non-missing values to plot</p>", note

    def draw() -> str:
        height = 0.8 + 0.22 * len(labels)
        figure = figures.new(4.8, max(height, 1.6))
        ax = figure.add_subplot()
        y = np.arange(len(labels))
        ax.barh(y - 0.2, real_share, height=0.4, color=_REAL_COLOUR, label="real")
        ax.barh(y + 0.2, synthetic_share, height=0.4, color=_SYNTHETIC_COLOUR, label="synthetic")
        ax.set_yticks(y, [_label(label) for label in labels])
        ax.invert_yaxis()
        ax.set_xlabel("share of non-missing values")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, frameon=False)
        return figures.img(figure, f"category shares of {name}")

    return _safely(draw), note


# ---------------------------------------------------------------------- pair trends


def _correlation_matrix(
    columns: list[str],
    kinds: Mapping[str, str],
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    pairs: pd.DataFrame,
) -> np.ndarray:
    """``|r_real - r_synthetic|`` per column pair, from ``pairs`` where it has the pair."""
    index = {name: i for i, name in enumerate(columns)}
    diff = np.full((len(columns), len(columns)), np.nan)
    np.fill_diagonal(diff, 0.0)
    found = np.eye(len(columns), dtype=bool)
    correlation_pairs = pairs[pairs["metric"] == "CorrelationSimilarity"] if len(pairs) else pairs
    for row in correlation_pairs.itertuples(index=False):
        i, j = index.get(row.column_1), index.get(row.column_2)
        if i is None or j is None:
            continue
        diff[i, j] = diff[j, i] = abs(float(row.real_trend) - float(row.synthetic_trend))
        found[i, j] = found[j, i] = True
    if not found.all():  # pairs the fidelity report lacks: compute on the sampled rows
        real_r, synthetic_r = (
            pd.DataFrame({c: _as_float(frame[c], kinds[c]) for c in columns}).corr().to_numpy()
            for frame in (real, synthetic)
        )
        diff = np.where(found, diff, np.abs(real_r - synthetic_r))
    return diff


def _correlation_section(
    columns: list[str],
    kinds: Mapping[str, str],
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    pairs: pd.DataFrame,
    figures: _Figures,
) -> str:
    parts: list[str] = []
    if len(columns) < 2:
        parts.append(
            "<p class='note'>Fewer than two numeric/datetime columns: no correlation heatmap.</p>"
        )
    else:

        def draw() -> str:
            diff = _correlation_matrix(columns, kinds, real, synthetic, pairs)
            size = min(1.6 + 0.45 * len(columns), 14.0)
            figure = figures.new(size + 1.2, size)
            ax = figure.add_subplot()
            from matplotlib import colormaps

            cmap = colormaps["Reds"].with_extremes(bad="#dddddd")
            image = ax.imshow(np.ma.masked_invalid(diff), cmap=cmap, vmin=0.0, vmax=1.0)
            labels = [_label(c) for c in columns]
            ticks = np.arange(len(columns))
            ax.set_xticks(ticks, labels, rotation=60, ha="right", rotation_mode="anchor")
            ax.set_yticks(ticks, labels)
            if len(columns) <= 15:
                for i in range(len(columns)):
                    for j in range(len(columns)):
                        value = diff[i, j]
                        text = "n/a" if math.isnan(value) else f"{value:.2f}"
                        colour = "white" if not math.isnan(value) and value > 0.6 else "black"
                        ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
            extend = "max" if np.nanmax(diff) > 1.0 else "neither"  # |diff| can reach 2
            figure.colorbar(
                image, ax=ax, shrink=0.8, extend=extend, label="|r real \u2212 r synthetic|"
            )
            return figures.img(figure, "correlation difference heatmap")

        parts.append(
            "<figure class='wide'>"
            + _safely(draw)
            + "<figcaption>|Pearson r<sub>real</sub> &minus; r<sub>synthetic</sub>| over "
            "numeric and datetime columns (datetimes as int64 ns, pairwise-complete rows); "
            "grey: undefined (constant or all-missing column).</figcaption></figure>"
        )
    parts.append(_pair_table(pairs))
    return "\n".join(parts)


def _pair_table(pairs: pd.DataFrame) -> str:
    if pairs.empty:
        return "<p class='note'>No column pairs.</p>"
    counted = pairs[pairs["counted"].astype(bool)]
    header = (
        f"<p class='note'>{len(counted)} of {len(pairs)} pairs show a trend in the real data "
        "and count towards Column Pair Trends (worst first).</p>"
    )
    if counted.empty:
        return header
    counted = counted.sort_values("score", kind="stable")
    rows = "".join(
        f"<tr><td>{_e(r.column_1)}</td><td>{_e(r.column_2)}</td><td>{_e(r.metric)}</td>"
        f"<td class='num'>{_fmt(r.real_trend, 3)}</td>"
        f"<td class='num'>{_fmt(r.synthetic_trend, 3)}</td>"
        f"<td class='num'>{_fmt(r.score)}</td></tr>"
        for r in counted.itertuples(index=False)
    )
    return (
        header + "<table class='pairs'><thead><tr><th>column 1</th><th>column 2</th>"
        "<th>metric</th><th>real trend</th><th>synthetic trend</th><th>score</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


# -------------------------------------------------------------------------- privacy


def _privacy_section(privacy: PrivacyReport | None, figures: _Figures) -> str:
    if privacy is None:
        return "<p class='note'>Privacy was not evaluated for this release.</p>"
    train = np.asarray(privacy.dcr_train, dtype=float)
    holdout = np.asarray(privacy.dcr_holdout, dtype=float)
    train, holdout = train[np.isfinite(train)], holdout[np.isfinite(holdout)]

    def draw() -> str:
        both = np.concatenate([train, holdout])
        if both.size == 0:
            return "<p class='error'>no distances to plot</p>"
        hi = float(both.max())
        edges = np.linspace(0.0, hi if hi > 0 else 1.0, _MAX_BINS + 1)
        figure = figures.new(6.4, 2.8, margins=(0.1, 0.16, 0.98, 0.97))
        ax = figure.add_subplot()
        for values, colour, label in (
            (train, _TRAIN_COLOUR, "to closest train row"),
            (holdout, _HOLDOUT_COLOUR, "to closest holdout row"),
        ):
            if values.size:
                counts, _ = np.histogram(values, bins=edges)
                _stairs(ax, counts / values.size, edges, colour, label)
        ax.set_xlabel("distance (mean per-column distance, 0 = identical row)")
        ax.set_ylabel("share of synthetic rows")
        ax.legend(loc="best", frameon=False)
        return figures.img(figure, "distance to closest record histogram")

    facts = [
        ("DCR share (closer to train than holdout; ~0.5 expected)", _fmt(privacy.dcr_share)),
        ("NNDR median", _fmt(privacy.nndr_median)),
        ("exact copies of rare train rows (< 5 share them)", _fmt(privacy.exact_copies_train)),
        ("copies of common combinations (5+ train rows)", _fmt(privacy.common_copies_train)),
        ("exact copies of holdout rows", _fmt(privacy.exact_copies_holdout)),
        ("baseline protection", _fmt(privacy.baseline_protection)),
        ("median DCR to train / holdout", f"{_median(train)} / {_median(holdout)}"),
        ("synthetic rows evaluated", _fmt(privacy.n_synthetic_evaluated)),
        ("train and holdout rows searched (each)", _fmt(privacy.n_reference)),
    ]
    if privacy.subsampled:
        of = "" if privacy.n_synthetic is None else f" from {_fmt(privacy.n_synthetic)}"
        facts.append(
            (
                f"DCR share standard error (rows sampled{of})",
                _fmt(privacy.dcr_share_sampling_error),
            )
        )
    rows = "".join(f"<tr><td>{k}</td><td class='num'>{v}</td></tr>" for k, v in facts)
    return (
        f"<figure class='wide'>{_safely(draw)}<figcaption>Distance of each evaluated "
        "synthetic row to its closest train row and closest holdout row. Curves that "
        "coincide mean the generator is no closer to the rows it trained on than to unseen "
        "ones.</figcaption></figure>"
        f"<table class='scores'><tbody>{rows}</tbody></table>"
    )


def _median(values: np.ndarray) -> str:
    return _fmt(float(np.median(values))) if values.size else "n/a"


# ----------------------------------------------------------------------------- page

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;
max-width:1200px;padding:0 1em;color:#222;font-size:14px}
h1{font-size:1.6em;word-break:break-all}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
dl.context{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;margin:.5em 0}
dl.context dt{font-weight:600}dl.context dd{margin:0;font-family:monospace;word-break:break-all}
.verdict{padding:.7em 1em;border-radius:6px;font-weight:700;margin:1em 0}
.verdict.pass{background:#e3f4e3;color:#1b5e20;border:1px solid #7cc47f}
.verdict.fail{background:#fde7e7;color:#b71c1c;border:1px solid #ef9a9a}
.verdict.none{background:#f2f2f2;border:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;word-break:break-word}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.gate.pass td.status{background:#e3f4e3;color:#1b5e20;font-weight:700}
tr.gate.fail td{background:#fde7e7}tr.gate.fail td.status{color:#b71c1c;font-weight:700}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:1em}
figure{margin:0;border:1px solid #e5e5e5;border-radius:4px;padding:.5em}
figure.wide{max-width:900px;margin:.5em 0}
figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:.9em;color:#444;margin-top:.3em;word-break:break-word}
.note{color:#555}.error{color:#b71c1c;font-style:italic}
"""


def _page(title: str, body: str) -> str:
    """The HTML document around an already escaped title and body."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{title}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
