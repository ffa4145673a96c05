"""Alerts: firing (and what was resolved in the last day, such as a rollback that recovered) and
resolved, each with the text of its Slack messages, or what they would say when Slack is off, and
for a firing one an Acknowledge button (an operator's, audited: its thread and PagerDuty say who
has it) and for a rollback a link to its incident page; then, per alert route (Slack, webhook,
PagerDuty, e-mail), what was sent and whether it was delivered."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from app.dashboard import auth, common
from monitoring.alerts.acknowledgement import acknowledge
from monitoring.settings import get_settings
from monitoring.store import dashboard_queries, route_deliveries

SEVERITY_MARK = {"critical": ":red[:material/error:]", "warning": ":orange[:material/warning:]",
                 "info": ":blue[:material/info:]"}
RESOLVED_MARK = ":green[:material/check_circle:]"
RECENT = timedelta(hours=24)  # the Firing view also lists what was resolved this long ago or later

st.title("Alerts")


def _time(value) -> str:
    return "—" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")


def _present(value) -> bool:
    return value is not None and not pd.isna(value)


def _slack_line(alert, slack_on: bool) -> str:
    routed = (alert.details or {}).get("slack_threads") or {}  # Slack routes of the routes file
    if routed:
        return "Slack: " + ", ".join(f"route {name}, thread {thread['ts']}"
                                     for name, thread in sorted(routed.items())) + "."
    if alert.slack_thread_ts:  # posted (perhaps while Slack was still configured)
        return f"Slack {alert.slack_channel}, thread {alert.slack_thread_ts}."
    if not slack_on:
        return ("Slack is not configured (set VIGIL_SLACK_BOT_TOKEN or VIGIL_SLACK_WEBHOOK_URL): "
                "below is what Vigil would have sent.")
    return "Slack: not posted yet."


def _show(alert, messages: pd.DataFrame, slack_on: bool) -> None:
    """One alert: what, when, its facts and the thread of Slack messages it has (or would have)."""
    firing = alert.state == "firing"
    mark = SEVERITY_MARK.get(alert.severity, "") if firing else RESOLVED_MARK
    when = f"firing since {_time(alert.opened_at)}" if firing else f"resolved {_time(alert.resolved_at)}"
    with st.expander(f"{mark} {alert.model_name} · {alert.title} · {when}", expanded=firing):
        resolved = f", resolved {_time(alert.resolved_at)}" if _present(alert.resolved_at) else ""
        st.write(f"**{alert.kind}**, severity {alert.severity}; opened {_time(alert.opened_at)}{resolved}. "
                 + _slack_line(alert, slack_on))
        incident = _incident_id((alert.details or {}).get("link"))
        if incident is not None:
            st.page_link("views/incidents.py", label=f"Open the incident (rollback #{incident})",
                         icon=":material/history:", query_params={"id": str(incident)})
        facts = (alert.details or {}).get("facts", {})
        if facts:
            st.json(facts, expanded=False)
        if firing:
            _acknowledgement(alert)
        for message in messages[messages["alert_id"] == alert.id].itertuples():
            st.caption(f"{message.kind} · {_time(message.created_at)} · {common.delivery_line(message.delivered_at, message.attempts, message.last_error, slack_on)}")
            st.code(message.text, language=None)


def _acknowledgement(alert) -> None:
    """Who acknowledged the firing alert, or the button to do it."""
    done = (alert.details or {}).get("acknowledged")
    if done:
        st.caption(f"Acknowledged by {done['by']} at {_time(pd.Timestamp(done['at']))}.")
        return
    if not st.button("Acknowledge", key=f"ack_{alert.id}", help="tell on-call you have it (audited)"):
        return
    actor = auth.require_operator("acknowledge", alert.model_name, detail=f"alert {alert.alert_key}")
    if actor is None:
        return
    try:
        st.success(acknowledge(common.runtime().store_url, alert.alert_key, actor, channel="dashboard"))
    except (LookupError, ValueError) as error:
        st.error(str(error))
        return
    common.after_action()
    st.rerun()


def _incident_id(link) -> int | None:
    """The rollback an alert's messages link to (``.../incidents?id=N``), if any."""
    if not isinstance(link, str) or "/incidents?id=" not in link:
        return None
    tail = link.rsplit("=", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _recently_resolved(url: str, model_name: str | None) -> pd.DataFrame:
    """Alerts resolved in the last RECENT: a rollback that recovered is resolved within minutes, and
    the Firing view still tells that story."""
    frame = common.alerts(url, model_name, "resolved")
    if frame.empty:
        return frame
    since = pd.Timestamp(common.now_minute() - RECENT)
    return frame[pd.to_datetime(frame["resolved_at"], utc=True) >= since]


@st.fragment(run_every=common.REFRESH)
def alert_list() -> None:
    url = common.store_url()
    view = common.view()
    slack_on = get_settings().slack_enabled
    scope = st.segmented_control("Show", ["Firing", "Resolved", "All"], default="Firing", key="alert_state")
    every_model = st.toggle("All models", value=False, key="alert_all_models")
    model_name = None if every_model else view.model_name
    state = {"Firing": "firing", "Resolved": "resolved"}.get(scope or "Firing")
    frame = common.alerts(url, model_name, state)
    recent = _recently_resolved(url, model_name) if state == "firing" else pd.DataFrame()
    ids = [int(i) for part in (frame, recent) if not part.empty for i in part["id"]]
    messages = dashboard_queries.alert_messages(url, ids) if ids else None
    if frame.empty:
        st.success("No alert is firing now." if state == "firing" else "No alerts here.")
    for alert in frame.itertuples():
        _show(alert, messages, slack_on)
    if not recent.empty:
        st.subheader(f"Resolved in the last {RECENT.total_seconds() / 3600:.0f} hours")
        for alert in recent.itertuples():
            _show(alert, messages, slack_on)


def _route_state(row) -> str:
    if row.delivered_at is not None:
        return f"delivered {_time(row.delivered_at)}"
    error = f": {row.last_error}" if row.last_error else ""
    return f"waiting, {row.attempts} attempts, next {_time(row.next_attempt_at)}{error}"


@st.fragment(run_every=common.REFRESH)
def route_list() -> None:
    """What each alert route was sent (newest first) and whether it took it."""
    st.header("Alert routes")
    every_model = st.session_state.get("alert_all_models", False)
    model_name = None if every_model else common.view().model_name
    rows = [r for r in route_deliveries.recent_deliveries(common.store_url())
            if model_name is None or r.model_name == model_name]
    if not rows:
        st.caption("No message went to an alert route (VIGIL_ALERT_ROUTES_FILE) for this model.")
        return
    st.dataframe(pd.DataFrame([{
        "route": r.route, "sent": _time(r.created_at), "model": r.model_name, "kind": r.kind,
        "severity": r.severity, "title": r.title, "delivered": r.delivered_at is not None,
        "state": _route_state(r),
    } for r in rows]), hide_index=True)


if not common.no_model():
    alert_list()
    route_list()
