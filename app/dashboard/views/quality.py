"""Quality: the watchdog's live quality test on the champion (refreshed every few seconds), then
quality over time per version from the monitoring windows, with the alias moves marked and the
labelled samples behind each point; before the labels arrive, the estimate (CBPE) beside what the
labels later showed."""

import streamlit as st

from app.dashboard import charts, common, live_panel
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


@st.fragment(run_every=common.REFRESH)
def estimated() -> None:
    view = common.view()
    url = common.store_url()
    span = view.span
    frame = common.series(url, view.model_name, metric_names.ESTIMATED_QUALITY + metric_names.CLASSIFICATION_QUALITY,
                          span)
    if frame.empty or not frame["metric"].isin(metric_names.ESTIMATED_QUALITY).any():
        st.caption("No estimated performance in this time range: it needs a classifier with probabilities "
                   "and 200 labelled predictions of the version to check them on.")
        return
    metric = st.session_state.get("quality_metric") or metric_names.ACCURACY
    if metric not in metric_names.CLASSIFICATION_QUALITY:
        metric = metric_names.ACCURACY
    figure = charts.combined(frame, {f"estimated_{metric}": f"estimated {metric}", metric: f"realised {metric}"},
                             span=span, title=f"Estimated {metric} (before labels) and realised", y_title=metric)
    st.plotly_chart(charts.add_moves(figure, common.alias_moves(url, view.model_name), span), key="estimated_chart")
    st.caption(f"{metric} expected from the champion's own calibrated probabilities (CBPE), available as soon "
               "as it answers, beside the value the labels gave once they arrived. Healthy: the two lines "
               "agree; an estimated drop is an early warning under input drift, and it cannot see a changed "
               "relation between inputs and outcome (only labels can).")


if not common.no_model():
    st.subheader("What the watchdog sees now")
    live_panel.fragment(common.view().model_name, "live_quality")
    st.subheader("Monitoring windows")
    quality()
    estimated()
