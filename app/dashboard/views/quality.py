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
    span = view.span
    frame = common.series(url, view.model_name, metric_names.QUALITY, span)
    moves = common.alias_moves(url, view.model_name)
    if frame.empty:
        st.info(f"No quality windows for {view.model_name} in this time range (labels may not have arrived yet).")
        return
    present = [metric for metric in metric_names.QUALITY if metric in set(frame["metric"])]
    metric = st.segmented_control("Metric", present, default=present[0], key="quality_metric") or present[0]
    lower = " (lower is better)" if metric in metric_names.LOWER_IS_BETTER else ""
    figure = charts.by_version(frame, metric, span=span, column="weighted",
                               title=f"{metric}{lower} per version", y_title=metric)
    st.plotly_chart(charts.add_moves(figure, moves, span), key="quality_chart")
    better = "low" if metric in metric_names.LOWER_IS_BETTER else "high"
    st.caption(f"The champion's {metric} on labelled predictions, one line per version, in "
               f"{charts.bucket_label(span.bucket_seconds)} buckets; triangles mark alias moves. Healthy: "
               f"the line stays flat and {better}, and a new version's line is no worse than the last one's.")
    st.plotly_chart(charts.samples(frame, metric, span=span, title="Labelled samples per time bucket"),
                    key="samples_chart")
    st.caption(f"{int(frame[frame['metric'] == metric]['samples'].sum()):,} labelled samples in range, "
               "the evidence behind each point above. Healthy: labels keep arriving in every bucket.")


if not common.no_model():
    quality()
