"""The serving process: latency p50/p95/p99, throughput, error rate, CPU and memory."""

import streamlit as st

from app.dashboard import charts, common
from monitoring import metric_names
from monitoring.settings import get_settings
from monitoring.store import dashboard_queries

st.title("Service")


@st.fragment(run_every=common.REFRESH)
def service() -> None:
    view = common.view()
    url = common.store_url()
    settings = get_settings()
    frame = common.series(url, view.model_name, dashboard_queries.SERVICE_CHARTS, view.start, view.end)
    moves = common.alias_moves(url, view.model_name)
    if frame.empty:
        st.info(f"No service windows for {view.model_name} in this time range.")
        return

    def show(figure, key: str) -> None:
        st.plotly_chart(charts.add_moves(figure, moves, view.start, view.end), key=key)

    show(charts.combined(frame, {metric_names.LATENCY_P50: "p50", metric_names.LATENCY_P95: "p95", metric_names.LATENCY_P99: "p99"},
                         title="Latency", y_title="ms", limit=settings.watchdog.latency_p95_slo_ms), "latency")
    left, right = st.columns(2)
    with left:
        show(charts.combined(frame, {metric_names.THROUGHPUT: "requests/s"}, title="Throughput", y_title="req/s"),
             "throughput")
        show(charts.combined(frame, {metric_names.CPU_PERCENT: "CPU"}, title="CPU of the serving process",
                             y_title="%"), "cpu")
    with right:
        show(charts.combined(frame, {metric_names.ERROR_RATE: "error rate"}, title="Error rate", y_title="share",
                             limit=settings.watchdog.error_rate_limit), "errors")
        show(charts.combined(frame, {metric_names.MEMORY_MB: "resident memory"}, title="Memory of the serving process",
                             y_title="MB"), "memory")


if not common.no_model():
    service()
