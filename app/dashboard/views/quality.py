"""Quality over time per version, with the alias moves marked and the labelled samples behind
each point."""

import streamlit as st

from app.dashboard import charts, common
from monitoring import metric_names

st.title("Quality")


@st.fragment(run_every=common.REFRESH)
def quality() -> None:
    view = common.view()
    url = common.store_url()
    frame = common.series(url, view.model_name, metric_names.QUALITY, view.start, view.end)
    moves = common.alias_moves(url, view.model_name)
    if frame.empty:
        st.info(f"No quality windows for {view.model_name} in this time range (labels may not have arrived yet).")
        return
    present = [metric for metric in metric_names.QUALITY if metric in set(frame["metric"])]
    metric = st.segmented_control("Metric", present, default=present[0], key="quality_metric") or present[0]
    lower = " (lower is better)" if metric in metric_names.LOWER_IS_BETTER else ""
    figure = charts.by_version(frame, metric, column="weighted", title=f"{metric}{lower} per version",
                               y_title=metric)
    st.plotly_chart(charts.add_moves(figure, moves, view.start, view.end), key="quality_chart")
    st.plotly_chart(charts.samples(frame, metric, title="Labelled samples per time bucket"),
                    key="samples_chart")
    st.caption(f"{int(frame[frame['metric'] == metric]['samples'].sum()):,} labelled samples in range; "
               "points are sample-weighted means over each time bucket.")


if not common.no_model():
    quality()
