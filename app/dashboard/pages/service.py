"""The serving process: latency p50/p95/p99, throughput, error rate, CPU and memory."""

import streamlit as st

from app.dashboard import charts, common
from monitoring import dashboard_queries as q
from monitoring import metric_names as m
from monitoring.settings import get_settings

st.title("Service")


@st.fragment(run_every=common.REFRESH)
def service() -> None:
    view = common.view()
    url = common.store_url()
    settings = get_settings()
    frame = common.series(url, view.model_name, q.SERVICE_CHARTS, view.start, view.end)
    moves = common.alias_moves(url, view.model_name)
    if frame.empty:
        st.info(f"No service windows for {view.model_name} in this time range.")
        return

    def show(figure, key: str) -> None:
        st.plotly_chart(charts.add_moves(figure, moves, view.start, view.end), key=key)

    show(charts.combined(frame, {m.LATENCY_P50: "p50", m.LATENCY_P95: "p95", m.LATENCY_P99: "p99"},
                         title="Latency", y_title="ms", limit=settings.latency_p95_slo_ms), "latency")
    left, right = st.columns(2)
    with left:
        show(charts.combined(frame, {m.THROUGHPUT: "requests/s"}, title="Throughput", y_title="req/s"),
             "throughput")
        show(charts.combined(frame, {m.CPU_PERCENT: "CPU"}, title="CPU of the serving process",
                             y_title="%"), "cpu")
    with right:
        show(charts.combined(frame, {m.ERROR_RATE: "error rate"}, title="Error rate", y_title="share",
                             limit=settings.error_rate_limit), "errors")
        show(charts.combined(frame, {m.MEMORY_MB: "resident memory"}, title="Memory of the serving process",
                             y_title="MB"), "memory")


if not common.no_model():
    service()
