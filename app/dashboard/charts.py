"""Plotly figures of the dashboard, built from the DataFrames of ``monitoring.store.dashboard_queries``.

Pure: frames in, figures out. Every time chart spans the selected range (a ``Span``), whatever the
amount of data in it, so one bucket is a marker in its place on a day-long axis rather than an
invisible one-point line that plotly zooms into. Y axes are fitted to the metric: scores in [0, 1]
on 0..1, everything else from zero to a little above the highest value or limit. Alias moves are
dashed vertical lines plus a lane of markers along the top whose hover says what moved, by whom and
why (labels written on the chart would overlap when moves are close together).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import plotly.graph_objects as go

from monitoring import metric_names

MOVE_LOOK = {  # kind -> (colour, label)
    "promote": ("#2e7d32", "promoted"),
    "manual_rollback": ("#ef6c00", "manual rollback"),
    "auto_rollback": ("#c62828", "automatic rollback"),
}
HEIGHT = 320
MARKERS_UP_TO = 30  # series with this many points or fewer are drawn with a marker on each
MARKER_SIZE = 7
SCORES = frozenset(metric_names.CLASSIFICATION_QUALITY + metric_names.ESTIMATED_QUALITY)  # within [0, 1]
SHARES = frozenset({metric_names.ERROR_RATE, metric_names.DRIFT_SHARE})  # within [0, 1], often small
HEADROOM = 1.15
MOVES_AXIS = "y2"  # an invisible 0..1 axis over the chart that the move markers sit on
MOVES_LANE = 0.97


@dataclass(frozen=True)
class Span:
    """The x axis of a time chart: the selected range and the size of its time buckets."""

    start: datetime
    end: datetime
    bucket_seconds: int

    @property
    def bucket(self) -> timedelta:
        return timedelta(seconds=self.bucket_seconds)


def bucket_label(seconds: int) -> str:
    """``300`` -> ``"5-minute"``: how the captions name a bucket size."""
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400}-day"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}-hour"
    return f"{seconds // 60}-minute" if seconds % 60 == 0 else f"{seconds}-second"


def line(values: pd.Series, span: Span, name: str) -> go.Scatter:
    """One series on the span's bucket grid: a gap where a bucket has no value (a version that did
    not serve, a pause), and a marker on each point when there are few of them or where a point has
    no neighbour to draw a line to (a lone bucket would otherwise be invisible)."""
    on_grid = values.groupby(level=0).mean().reindex(_bucket_grid(span).union(values.index))
    present = on_grid.notna()
    alone = present & ~present.shift(1, fill_value=False) & ~present.shift(-1, fill_value=False)
    few = int(present.sum()) <= MARKERS_UP_TO
    sizes = [MARKER_SIZE if few or lone else 0 for lone in alone]
    return go.Scatter(x=on_grid.index, y=on_grid.to_numpy(), name=name, mode="lines+markers",
                      marker={"size": sizes}, connectgaps=False, cliponaxis=False)


def layout(figure: go.Figure, span: Span, title: str, y_title: str) -> go.Figure:
    figure.update_layout(title=title, height=HEIGHT, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         yaxis_title=y_title, legend={"orientation": "h", "y": -0.2}, hovermode="x unified")
    figure.update_xaxes(type="date", range=[span.start, span.end])
    return figure


def y_range(metrics, values: list[float], limit: float | None = None) -> list[float]:
    """The y axis for ``metrics``: 0..1 for scores, else 0 up to a little above the data and limit."""
    if metrics and all(metric in SCORES for metric in metrics):
        return [0.0, 1.0]
    highest = max([v for v in values if pd.notna(v)] + ([limit] if limit is not None else []), default=0.0)
    top = highest * HEADROOM if highest > 0 else 1.0
    if metrics and all(metric in SHARES for metric in metrics):
        top = min(top, 1.0)
    return [0.0, top]


def _fit_y(figure: go.Figure, metrics, limit: float | None) -> go.Figure:
    values = [float(v) for trace in figure.data for v in (trace.y if trace.y is not None else ())]
    figure.update_layout(yaxis_range=y_range(tuple(metrics), values, limit))
    return figure


def _limit_line(figure: go.Figure, limit: float | None, label: str) -> None:
    if limit is not None:
        figure.add_hline(y=limit, line={"color": "#c62828", "dash": "dot", "width": 1},
                         annotation_text=label, annotation_position="bottom right")


def add_moves(figure: go.Figure, moves: pd.DataFrame, span: Span) -> go.Figure:
    """Mark each alias move inside the span: a dashed line, and a marker in a lane along the top
    whose hover tells the move (one legend entry per kind of move)."""
    if moves.empty:
        return figure
    shown = moves[(moves["created_at"] >= span.start) & (moves["created_at"] <= span.end)]
    if shown.empty:
        return figure
    figure.update_layout(yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True})
    for move in shown.itertuples():
        colour, _label = MOVE_LOOK.get(move.kind, ("#555555", move.kind))
        figure.add_shape(type="line", x0=move.created_at, x1=move.created_at, y0=0, y1=1, yref="paper",
                         line={"color": colour, "dash": "dash", "width": 1.5})
    for kind, part in shown.groupby("kind", sort=False):
        colour, label = MOVE_LOOK.get(kind, ("#555555", kind))
        hover = [f"{label}: v{_version(m.from_version)}→v{_version(m.to_version)} by {m.actor}"
                 + (f" ({m.reason})" if isinstance(m.reason, str) and m.reason else "")
                 for m in part.itertuples()]
        figure.add_trace(go.Scatter(
            x=part["created_at"], y=[MOVES_LANE] * len(part), yaxis=MOVES_AXIS, mode="markers",
            name=label, marker={"symbol": "triangle-down", "size": 11, "color": colour},
            hovertext=hover, hoverinfo="text", cliponaxis=False,
        ))
    return figure


def _version(value) -> str:
    return "–" if value is None or pd.isna(value) else str(int(value))


def by_version(frame: pd.DataFrame, metric: str, *, span: Span, column: str = "mean", title: str,
               y_title: str, limit: float | None = None, limit_label: str = "limit") -> go.Figure:
    """One line per version of ``metric`` over time, with an optional limit line."""
    figure = go.Figure()
    rows = frame[frame["metric"] == metric]
    for version, part in rows.groupby("model_version"):
        figure.add_trace(line(part.set_index("bucket")[column], span, f"v{version}"))
    _limit_line(figure, limit, limit_label)
    return _fit_y(layout(figure, span, title, y_title), (metric,), limit)


def samples(frame: pd.DataFrame, metric: str, *, span: Span, title: str) -> go.Figure:
    """Labelled samples behind ``metric`` per time bucket and version (stacked bars, one bucket wide)."""
    figure = go.Figure()
    rows = frame[frame["metric"] == metric]
    width_ms = span.bucket_seconds * 1000
    for version, part in rows.groupby("model_version"):
        figure.add_trace(go.Bar(x=part["bucket"], y=part["samples"], name=f"v{version}", offset=0,
                                width=[width_ms] * len(part), marker={"line": {"width": 0}}))
    figure.update_layout(barmode="stack")
    figure = layout(figure, span, title, "labelled samples")
    stacked = rows.groupby("bucket")["samples"].sum().astype(float).tolist()
    figure.update_layout(yaxis_range=y_range((), stacked))
    return figure


def combined(frame: pd.DataFrame, metrics: dict[str, str], *, span: Span, title: str, y_title: str,
             limit: float | None = None) -> go.Figure:
    """Several metrics over time, whatever the version served (requests-weighted across versions)."""
    figure = go.Figure()
    for metric, label in metrics.items():
        rows = frame[frame["metric"] == metric]
        if rows.empty:
            continue
        weighted = rows.assign(product=rows["mean"] * rows["samples"].clip(lower=1),
                               weight=rows["samples"].clip(lower=1))
        grouped = weighted.groupby("bucket")[["product", "weight"]].sum()
        figure.add_trace(line(grouped["product"] / grouped["weight"], span, label))
    _limit_line(figure, limit, "limit")
    return _fit_y(layout(figure, span, title, y_title), tuple(metrics), limit)


def _bucket_grid(span: Span) -> pd.DatetimeIndex:
    """Every bucket start of the span, aligned like the store's buckets (on the epoch)."""
    first = pd.Timestamp(span.start).floor(f"{span.bucket_seconds}s")
    return pd.date_range(first, pd.Timestamp(span.end), freq=f"{span.bucket_seconds}s", inclusive="left")


def drift_heatmap(matrix: pd.DataFrame, *, span: Span, title: str, measure: str = "drifted",
                  score: str = "mean score") -> go.Figure:
    """Features (rows) over time (columns): share of the bucket's windows in which the feature drifted.

    Columns cover every bucket of the span (empty where nothing was tested), each centred on its
    bucket, so a single bucket of results is one cell of the right width on the whole range."""
    grid = _bucket_grid(span)
    pivot = matrix.pivot_table(index="feature", columns="bucket", values="drifted_share", aggfunc="mean") \
        .reindex(columns=grid)
    scores = matrix.pivot_table(index="feature", columns="bucket", values="mean_score", aggfunc="mean") \
        .reindex(index=pivot.index, columns=grid)
    centres = [start + span.bucket / 2 for start in grid]
    figure = go.Figure(go.Heatmap(
        z=pivot.to_numpy(), x=centres, y=list(pivot.index), zmin=0, zmax=1, hoverongaps=False,
        colorscale="Reds", colorbar={"title": measure}, customdata=scores.to_numpy(),
        hovertemplate=f"%{{y}}<br>%{{x}}<br>{measure} in %{{z:.0%}} of windows<br>{score} %{{customdata:.3f}}"
                      "<extra></extra>",
    ))
    figure.update_layout(title=title, height=max(HEIGHT, 24 * len(pivot.index) + 120),
                         margin={"l": 10, "r": 10, "t": 40, "b": 10})
    figure.update_xaxes(type="date", range=[span.start, span.end])
    return figure
