"""Plotly figures of the dashboard, built from the DataFrames of ``monitoring.store.dashboard_queries``.

Pure: frames in, figures out. Alias moves are drawn on every time chart as dashed vertical lines
with a label (promote, manual rollback, automatic rollback), so a change in a curve can be read
against the version change that caused it.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

MOVE_LOOK = {  # kind -> (colour, label)
    "promote": ("#2e7d32", "promoted"),
    "manual_rollback": ("#ef6c00", "manual rollback"),
    "auto_rollback": ("#c62828", "automatic rollback"),
}
HEIGHT = 320


def _layout(figure: go.Figure, title: str, y_title: str) -> go.Figure:
    figure.update_layout(title=title, height=HEIGHT, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         yaxis_title=y_title, legend={"orientation": "h", "y": -0.2}, hovermode="x unified")
    return figure


def add_moves(figure: go.Figure, moves: pd.DataFrame, start, end) -> go.Figure:
    """Mark each alias move inside [start, end] with a line and a hoverable label."""
    if moves.empty:
        return figure
    shown = moves[(moves["created_at"] >= start) & (moves["created_at"] <= end)]
    for move in shown.itertuples():
        colour, label = MOVE_LOOK.get(move.kind, ("#555555", move.kind))
        figure.add_shape(type="line", x0=move.created_at, x1=move.created_at, y0=0, y1=1, yref="paper",
                         line={"color": colour, "dash": "dash", "width": 1.5})
        figure.add_annotation(
            x=move.created_at, y=1, yref="paper", showarrow=False, yanchor="bottom",
            text=f"v{_version(move.from_version)}→v{_version(move.to_version)}",
            font={"color": colour, "size": 11},
            hovertext=f"{label} by {move.actor}: {move.reason}",
        )
    return figure


def _version(value) -> str:
    return "–" if value is None or pd.isna(value) else str(int(value))


def by_version(frame: pd.DataFrame, metric: str, *, column: str = "mean", title: str, y_title: str,
               limit: float | None = None, limit_label: str = "limit") -> go.Figure:
    """One line per version of ``metric`` over time, with an optional limit line."""
    figure = go.Figure()
    rows = frame[frame["metric"] == metric]
    for version, part in rows.groupby("model_version"):
        figure.add_trace(go.Scatter(x=part["bucket"], y=part[column], mode="lines", name=f"v{version}"))
    if limit is not None:
        figure.add_hline(y=limit, line={"color": "#c62828", "dash": "dot", "width": 1},
                         annotation_text=limit_label, annotation_position="bottom right")
    return _layout(figure, title, y_title)


def samples(frame: pd.DataFrame, metric: str, *, title: str) -> go.Figure:
    """Labelled samples behind ``metric`` per time bucket and version (bars)."""
    figure = go.Figure()
    rows = frame[frame["metric"] == metric]
    for version, part in rows.groupby("model_version"):
        figure.add_trace(go.Bar(x=part["bucket"], y=part["samples"], name=f"v{version}"))
    figure.update_layout(barmode="stack")
    return _layout(figure, title, "labelled samples")


def combined(frame: pd.DataFrame, metrics: dict[str, str], *, title: str, y_title: str,
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
        figure.add_trace(go.Scatter(x=grouped.index, y=grouped["product"] / grouped["weight"],
                                    mode="lines", name=label))
    if limit is not None:
        figure.add_hline(y=limit, line={"color": "#c62828", "dash": "dot", "width": 1},
                         annotation_text="limit", annotation_position="bottom right")
    return _layout(figure, title, y_title)


def drift_heatmap(matrix: pd.DataFrame, *, title: str) -> go.Figure:
    """Features (rows) over time (columns): share of the bucket's windows in which the feature drifted."""
    pivot = matrix.pivot_table(index="feature", columns="bucket", values="drifted_share", aggfunc="mean")
    scores = matrix.pivot_table(index="feature", columns="bucket", values="mean_score", aggfunc="mean") \
        .reindex(index=pivot.index, columns=pivot.columns)
    figure = go.Figure(go.Heatmap(
        z=pivot.to_numpy(), x=list(pivot.columns), y=list(pivot.index), zmin=0, zmax=1,
        colorscale="Reds", colorbar={"title": "drifted"}, customdata=scores.to_numpy(),
        hovertemplate="%{y}<br>%{x}<br>drifted in %{z:.0%} of windows<br>mean score %{customdata:.3f}"
                      "<extra></extra>",
    ))
    figure.update_layout(title=title, height=max(HEIGHT, 24 * len(pivot.index) + 120),
                         margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure
