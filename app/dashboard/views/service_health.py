"""The serving process: latency p50/p95/p99, throughput, error rate, CPU and memory."""

import streamlit as st

from app.dashboard import charts, common
from monitoring import metric_names
from monitoring.store import dashboard_queries

st.title("Service")


@st.fragment(run_every=common.REFRESH)
def service() -> None:
    view = common.view()
    url = common.store_url()
    policy = common.policy(url, view.model_name).policy
    span = view.span
    frame = common.series(url, view.model_name, dashboard_queries.SERVICE_CHARTS, span)
    moves = common.alias_moves(url, view.model_name)
    if frame.empty:
        st.info(f"No service windows for {view.model_name} in this time range.")
        return

    def show(metrics: dict[str, str], key: str, caption: str, **looks) -> None:
        figure = charts.combined(frame, metrics, span=span, **looks)
        st.plotly_chart(charts.add_moves(figure, moves, span), key=key)
        st.caption(caption)

    latency = {metric_names.LATENCY_P50: "p50", metric_names.LATENCY_P95: "p95", metric_names.LATENCY_P99: "p99"}
    show(latency, "latency", f"Prediction latency percentiles per {charts.bucket_label(span.bucket_seconds)} "
         f"bucket. Healthy: p95 under the dotted SLO line ({policy.latency_p95_slo_ms:.0f} ms) and steady.",
         title="Latency", y_title="ms", limit=policy.latency_p95_slo_ms)
    left, right = st.columns(2)
    with left:
        show({metric_names.THROUGHPUT: "requests/s"}, "throughput",
             "Predictions served per second. Healthy: follows the traffic, no sudden drop to zero.",
             title="Throughput", y_title="req/s")
        show({metric_names.CPU_PERCENT: "CPU"}, "cpu",
             "CPU of the serving process. Healthy: well below 100 % per core, no steady climb.",
             title="CPU of the serving process", y_title="%")
    with right:
        show({metric_names.ERROR_RATE: "error rate"}, "errors",
             f"Failed predictions over all predictions. Healthy: near zero, under the dotted limit "
             f"({policy.error_rate_limit:.0%}).",
             title="Error rate", y_title="share", limit=policy.error_rate_limit)
        show({metric_names.MEMORY_MB: "resident memory"}, "memory",
             "Resident memory of the serving process. Healthy: flat; a steady climb is a leak.",
             title="Memory of the serving process", y_title="MB")


if not common.no_model():
    service()
