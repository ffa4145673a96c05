"""Drift: per-feature drift over time (heatmap), the share of drifted features, data quality per
feature (missing values, values out of the training range, unseen categories), and the Evidently
report of a window."""

from pathlib import Path

import pandas as pd
import streamlit as st

from app.dashboard import charts, common
from app.dashboard.report_frame import sandboxed_report
from monitoring import metric_names
from monitoring.settings import get_settings
from monitoring.store import dashboard_queries

st.title("Drift")


def _report(path: str | None) -> None:
    """Link or embed the window's Evidently report: embedded only from Vigil's own var directory,
    and then only in a sandbox without the dashboard's origin (``report_frame``)."""
    if not path:
        st.caption("No Evidently report was saved for this window.")
        return
    if path.startswith(("http://", "https://")):
        st.link_button("Open the Evidently report", path)
        return
    report = Path(path).expanduser().resolve()
    if not report.is_file():
        st.warning(f"The Evidently report is not at {report} any more.")
        return
    if not report.is_relative_to(get_settings().var_dir.expanduser().resolve()):
        st.caption(f"Evidently report: {report} (outside Vigil's var directory, not embedded)")
        return
    page = report.read_bytes()
    st.download_button("Download the Evidently report", page, file_name=report.name, mime="text/html")
    st.iframe(sandboxed_report(page.decode("utf-8", errors="replace")), height=700)


@st.fragment(run_every=common.REFRESH)
def over_time() -> None:
    view = common.view()
    url = common.store_url()
    matrix = common.drift_matrix(url, view.model_name, view.drift_span)
    if matrix.empty:
        st.info(f"No drift results for {view.model_name} in this time range.")
        return
    st.plotly_chart(charts.drift_heatmap(matrix, span=view.drift_span, title="Drifted windows per feature"),
                    key="drift_heatmap")
    st.caption(f"Per feature and {charts.bucket_label(view.drift_span.bucket_seconds)} bucket, the share "
               "of drift tests that fired against the training data; the two prediction rows compare the "
               "model's answers with its answers on the training data (often the first sign, before any "
               "label). Healthy: pale, with no row turning red.")
    span = view.span
    limit = common.policy(url, view.model_name).policy.drift_share
    share = common.series(url, view.model_name, (metric_names.DRIFT_SHARE,), span)
    figure = charts.combined(share, {metric_names.DRIFT_SHARE: "share of drifted features"}, span=span,
                             title="Share of drifted features", y_title="share",
                             limit=limit)
    st.plotly_chart(charts.add_moves(figure, common.alias_moves(url, view.model_name), span),
                    key="drift_share")
    st.caption(f"The share of features whose drift test fired; the dataset drifts at the dotted line "
               f"({limit:.0%}). Healthy: near zero, well under the line.")


@st.fragment(run_every=common.REFRESH)
def data_quality() -> None:
    view = common.view()
    url = common.store_url()
    st.subheader("Data quality")
    matrix = common.data_quality_matrix(url, view.model_name, view.drift_span)
    if matrix.empty:
        st.info(f"No data-quality checks for {view.model_name} in this time range (they run with the "
                "drift tests, on windows of at least 30 predictions against the version's reference).")
        return
    st.plotly_chart(charts.drift_heatmap(matrix, span=view.drift_span, title="Failed data-quality checks",
                                         measure="failed", score="mean rate"), key="quality_heatmap")
    st.caption("Per feature and check, the share of windows whose rate of missing values, values outside "
               "the training data's 0.5-99.5 % range, or categories never seen in training was above what "
               "the training data allows. Healthy: pale everywhere.")
    newest = dashboard_queries.data_quality_newest(url, view.model_name)
    failed = newest[newest["failed"]]
    when = f"{pd.Timestamp(newest['window_start'].iloc[0]):%Y-%m-%d %H:%M} UTC"
    if failed.empty:
        st.success(f"Newest checked window ({when}): all {len(newest)} checks pass.")
    else:
        st.warning(f"Newest checked window ({when}): {len(failed)} of {len(newest)} checks failed.")
        st.dataframe(failed.drop(columns=["window_start", "failed"]), hide_index=True, key="quality_failed",
                     column_config={c: st.column_config.NumberColumn(format="percent")
                                    for c in ("rate", "reference_rate", "threshold")})


def window_detail() -> None:
    view = common.view()
    url = common.store_url()
    windows = common.drift_windows(url, view.model_name)
    if windows.empty:
        return
    st.subheader("One window")
    labels = {
        f"{pd.Timestamp(w.window_start):%Y-%m-%d %H:%M} – {pd.Timestamp(w.window_end):%H:%M} UTC · "
        f"v{w.model_version} · {int(w.drifted)}/{int(w.features)} drifted": w.window_start
        for w in windows.itertuples()
    }
    chosen = st.selectbox("Window", list(labels), key="drift_window")
    detail = dashboard_queries.drift_window(url, view.model_name, labels[chosen])
    st.dataframe(detail.drop(columns=["report_path", "model_version"]), hide_index=True, key="drift_detail")
    _report(detail["report_path"].dropna().iloc[0] if detail["report_path"].notna().any() else None)


if not common.no_model():
    over_time()
    data_quality()
    window_detail()
