"""Alerts: firing and resolved, each with the text of its Slack messages."""

import pandas as pd
import streamlit as st

from app.dashboard import common
from monitoring.store import dashboard_queries

SEVERITY_MARK = {"critical": ":red[:material/error:]", "warning": ":orange[:material/warning:]",
                 "info": ":blue[:material/info:]"}
RESOLVED_MARK = ":green[:material/check_circle:]"

st.title("Alerts")


def _time(value) -> str:
    return "—" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")


@st.fragment(run_every=common.REFRESH)
def alert_list() -> None:
    url = common.store_url()
    view = common.view()
    scope = st.segmented_control("Show", ["Firing", "Resolved", "All"], default="Firing", key="alert_state")
    every_model = st.toggle("All models", value=False, key="alert_all_models")
    state = {"Firing": "firing", "Resolved": "resolved"}.get(scope or "Firing")
    frame = common.alerts(url, None if every_model else view.model_name, state)
    if frame.empty:
        st.success("No alerts here.")
        return
    messages = dashboard_queries.alert_messages(url, [int(i) for i in frame["id"]])
    for alert in frame.itertuples():
        mark = RESOLVED_MARK if alert.state == "resolved" else SEVERITY_MARK.get(alert.severity, "")
        header = f"{mark} {alert.model_name} · {alert.title} · {alert.state} since {_time(alert.opened_at)}"
        with st.expander(header, expanded=alert.state == "firing"):
            facts = (alert.details or {}).get("facts", {})
            st.write(f"**{alert.kind}**, severity {alert.severity}; opened {_time(alert.opened_at)}, "
                     f"resolved {_time(alert.resolved_at)}; Slack {alert.slack_channel or '—'} "
                     f"thread {alert.slack_thread_ts or '—'}")
            if facts:
                st.json(facts, expanded=False)
            thread = messages[messages["alert_id"] == alert.id]
            for message in thread.itertuples():
                delivered = (f"delivered {_time(message.delivered_at)}" if message.delivered_at is not None
                             and pd.notna(message.delivered_at) else
                             f"not delivered yet ({message.attempts} attempts{': ' + message.last_error if message.last_error else ''})")
                st.caption(f"{message.kind} · {_time(message.created_at)} · {delivered}")
                st.code(message.text, language=None)


if not common.no_model():
    alert_list()
