"""Plotly figures of the watchdog's evidence: the quality test's trajectory against its two
boundaries (live on Overview and Quality, frozen at the rollback on an incident's page) and an
incident's timeline. Pure: plain data in, figures out."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import timedelta

import plotly.graph_objects as go

from monitoring.incidents import Moment

HEIGHT = 300
MIN_TIMELINE = timedelta(seconds=20)  # a timeline of seconds still gets ticks a second or more apart


def sprt_trajectory(points: Sequence[tuple[int, float, float]], lower: float | None, upper: float | None, *,
                    title: str, height: int = HEIGHT) -> go.Figure:
    """The test's log-likelihood ratio after each label, with the "degraded" boundary above and
    the "as good as its baseline" boundary below; crossings of the upper one are red crosses."""
    labels = [p[0] for p in points]
    values = [p[1] for p in points]
    figure = go.Figure(go.Scatter(x=labels, y=values, mode="lines+markers", name="log-likelihood ratio",
                                  marker={"size": 4 if len(points) > 40 else 7}, line={"color": "#1565c0"},
                                  hovertemplate="label %{x}<br>LLR %{y:.2f}<extra></extra>"))
    if upper is not None:
        crossed = [p for p in points if p[1] >= upper]
        if crossed:
            figure.add_trace(go.Scatter(x=[p[0] for p in crossed], y=[p[1] for p in crossed], mode="markers",
                                        name="crossed: degraded", marker={"symbol": "x", "size": 12,
                                                                          "color": "#c62828"}))
        figure.add_hline(y=upper, line={"color": "#c62828", "dash": "dot"},
                         annotation_text=f"degraded at {upper:.2f}", annotation_position="top left")
    if lower is not None:
        figure.add_hline(y=lower, line={"color": "#2e7d32", "dash": "dot"},
                         annotation_text=f"as good as its baseline at {lower:.2f}",
                         annotation_position="bottom left")
    low = min([*values, lower if lower is not None else 0.0, 0.0])
    high = max([*values, upper if upper is not None else 0.0, 0.0])
    pad = max(0.5, 0.1 * (high - low))
    figure.update_layout(title=title, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         xaxis_title="labels since the version took over", yaxis_title="log-likelihood ratio",
                         yaxis_range=[low - pad, high + pad], showlegend=False)
    first, last = min(labels, default=0), max(labels, default=0)
    figure.update_xaxes(range=[max(first - 1 - 0.03 * (last - first), 0), last + 1 + 0.03 * (last - first)])
    return figure


def timeline(moments: Sequence[Moment], *, title: str) -> go.Figure:
    """One row per moment (so no label sits on another), each a marker at its time."""
    names = [m.what for m in moments]
    figure = go.Figure(go.Scatter(
        x=[m.at for m in moments], y=names, mode="markers+lines", line={"color": "#9e9e9e", "width": 1},
        marker={"size": 12, "color": ["#c62828" if "rollback" in m.what or "crossed" in m.what else "#1565c0"
                                      for m in moments]},
        hovertext=[f"{m.what}<br>{m.at:%H:%M:%S}.{m.at.microsecond // 1000:03d} UTC<br>{html.escape(m.detail)}"
                   for m in moments],  # a detail holds an operator's reason: text, not markup
        hoverinfo="text", cliponaxis=False,
    ))
    start, end = (min(m.at for m in moments), max(m.at for m in moments)) if moments else (None, None)
    if start is not None:
        pad = max((end - start) * 0.08, (MIN_TIMELINE - (end - start)) / 2, timedelta(seconds=1))
        figure.update_xaxes(type="date", range=[start - pad, end + pad])
    figure.update_layout(title=title, height=max(HEIGHT, 44 * len(moments) + 100),
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False)
    figure.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=names)
    return figure
