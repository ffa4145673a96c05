"""Plotly figures of a release (the Release page): the champion and the challenger side by side over
time, and the judge's two statistics against the boundaries they must reach. Pure: the frames of
``monitoring.watchdog.release_view`` in, figures out; drawn like ``charts`` (the release's whole
life on the axis, a lone bucket as a marker)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from app.dashboard import charts
from app.dashboard.charts import Span

ARM_COLOURS = {"champion": "#1565c0", "challenger": "#ef6c00"}
BANDS = {"champion": "rgba(21, 101, 192, 0.15)", "challenger": "rgba(239, 108, 0, 0.15)"}
PROMOTE, ABORT = "#2e7d32", "#c62828"


def arms(frame: pd.DataFrame, metric: str, names: dict[str, str], *, span: Span, title: str, y_title: str,
         y_range: list[float] | None = None) -> go.Figure:
    """One line per arm of ``metric`` (``names``: arm -> legend name), with its band where the frame
    has one (``low``/``high``)."""
    figure = go.Figure()
    rows = frame[frame["metric"] == metric]
    for arm, name in names.items():
        part = rows[rows["arm"] == arm].set_index("bucket")
        if part.empty:
            continue
        if part["low"].notna().any():
            for edge, fill in (("high", None), ("low", "tonexty")):
                figure.add_trace(go.Scatter(
                    x=part.index, y=part[edge].astype(float), mode="lines", line={"width": 0},
                    fill=fill, fillcolor=BANDS[arm], hoverinfo="skip", showlegend=False, name=f"{name} 95 % band"))
        trace = charts.line(part["value"].astype(float), span, name)
        trace.update(line={"color": ARM_COLOURS[arm]}, marker={"color": ARM_COLOURS[arm]})
        figure.add_trace(trace)
    figure = charts.layout(figure, span, title, y_title)
    values = [float(v) for trace in figure.data for v in (trace.y if trace.y is not None else ()) if pd.notna(v)]
    figure.update_layout(yaxis_range=y_range or charts.y_range((), values))
    return figure


def judge_progress(path: pd.DataFrame, *, title: str) -> go.Figure:
    """The judge's promote and abort evidence after each bucket's labels, each with the dotted line
    it must reach (the judge acts at the first crossing)."""
    labels = path["challenger labels"].tolist()
    figure = go.Figure()
    for column, colour, name in (("promote evidence", PROMOTE, "not worse (promote)"),
                                 ("abort evidence", ABORT, "worse (abort)")):
        figure.add_trace(go.Scatter(
            x=labels, y=path[column].tolist(), mode="lines+markers", name=name, line={"color": colour},
            marker={"size": 4 if len(path) > 40 else charts.MARKER_SIZE}, cliponaxis=False,
            hovertemplate=f"%{{x}} challenger labels<br>{name}: %{{y:.2f}}<extra></extra>"))
    needs = {}
    if not path.empty:
        needs = {"promote": float(path["promote needs"].iloc[-1]), "abort": float(path["abort needs"].iloc[-1])}
        figure.add_hline(y=needs["promote"], line={"color": PROMOTE, "dash": "dot"},
                         annotation_text=f"promote at {needs['promote']:.2f}", annotation_position="top left")
        figure.add_hline(y=needs["abort"], line={"color": ABORT, "dash": "dot"},
                         annotation_text=f"abort at {needs['abort']:.2f}", annotation_position="bottom right")
    values = path[["promote evidence", "abort evidence"]].to_numpy().ravel().tolist() + list(needs.values())
    low, high = min([*values, 0.0]), max([*values, 0.0])
    pad = max(0.5, 0.1 * (high - low))
    first, last = min(labels, default=0), max(labels, default=0)
    figure.update_layout(title=title, height=charts.HEIGHT, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         xaxis_title="challenger labels", yaxis_title="log e-value",
                         yaxis_range=[low - pad, high + pad], legend={"orientation": "h", "y": -0.3})
    figure.update_xaxes(range=[max(first - 1 - 0.03 * (last - first), 0), last + 1 + 0.03 * (last - first)])
    return figure
