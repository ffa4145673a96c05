"""Incidents: every rollback of a champion (by the watchdog or by an operator) as a story: its
timeline, the evidence the watchdog acted on (labels, error rates, the quality test's trajectory),
the wrong answers the bad version served, the time to recover and the Slack thread as sent.

Opened by its URL, ``/incidents?id=EVENT`` (the rollback's Slack messages and the Alerts page
link there), or chosen from the model's list. Read through ``monitoring.store.incidents``,
assembled by ``monitoring.incidents``."""

import pandas as pd
import streamlit as st

from app.dashboard import common, evidence_charts
from monitoring.incidents import Incident, assemble, duration, mean_seconds_to_recover, narration
from monitoring.settings import get_settings
from monitoring.store import incidents as store_incidents

st.title("Incidents")


@st.cache_data(ttl=common.TTL, show_spinner=False)
def _incident(url: str, event_id: int) -> Incident | None:
    found = store_incidents.facts(url, event_id)
    return assemble(found) if found is not None else None


@st.cache_data(ttl=common.TTL, show_spinner=False)
def _listed(url: str, model_name: str | None) -> list[Incident]:
    return [told for _name, move in store_incidents.rollbacks(url, model_name, limit=100)
            if (told := _incident(url, move.id)) is not None]


def _label(incident: Incident) -> str:
    who = "watchdog" if incident.automatic else incident.actor
    return (f"#{incident.id} · {incident.rolled_back_at:%Y-%m-%d %H:%M:%S} UTC · {incident.model_name} "
            f"v{incident.bad_version} → v{incident.restored_version} · {who}")


def _requested() -> int | None:
    """The id in the URL (``?id=``), if it is a number; a clear error if it is not."""
    raw = st.query_params.get("id")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        st.error(f"`id={raw}` is not an incident id (a number); pick an incident below.")
        return None


def _choose(listed: list[Incident]) -> Incident | None:
    """The incident the URL names (even of another model), else the one picked (newest first);
    the URL then names the one shown, so it can be shared."""
    wanted = _requested()
    if wanted is not None and all(i.id != wanted for i in listed):
        found = _incident(common.store_url(), wanted)
        if found is None:
            st.error(f"No rollback with id {wanted} in Vigil's store; pick one below.")
        else:
            listed = [found, *listed]
    if not listed:
        return None
    by_id = {i.id: i for i in listed}
    ids = list(by_id)
    chosen = st.selectbox("Incident", ids, index=ids.index(wanted) if wanted in by_id else 0,
                          format_func=lambda i: _label(by_id[i]))
    if st.query_params.get("id") != str(chosen):
        st.query_params["id"] = str(chosen)
    return by_id[chosen]


def _timeline(incident: Incident) -> None:
    st.plotly_chart(evidence_charts.timeline(incident.timeline, title="Timeline"), key="incident_timeline")
    st.caption("Each moment of the incident on its own row, in time order. Healthy: the rollback comes "
               "seconds after the quality test crossed its boundary, and the restored version answers "
               "right after it.")
    start = incident.promoted_at or incident.timeline[0].at
    st.dataframe(pd.DataFrame([{"moment": m.what, "at (UTC)": f"{m.at:%Y-%m-%d %H:%M:%S.%f}"[:-3],
                                "after the promotion": f"{(m.at - start).total_seconds():+.1f} s",
                                "detail": m.detail} for m in incident.timeline]),
                 hide_index=True, key="incident_moments")


def _evidence(incident: Incident) -> None:
    st.subheader("Evidence")
    cells = st.columns(4)
    cells[0].metric("Labels used", "—" if incident.labels is None else f"{incident.labels:,}")
    cells[0].caption("labelled answers the quality test had seen at the rollback")
    accuracy = "—" if incident.accuracy is None else f"{incident.accuracy:.3f}"
    cells[1].metric(f"Accuracy of v{incident.bad_version}", accuracy)
    cells[1].caption(f"baseline {_num(incident.baseline_accuracy)} · degraded below {_num(incident.trip_accuracy)}")
    cells[2].metric("Wrong answers served", f"{incident.served.wrong:,}")
    wrong = "—" if incident.wrong_rate is None else f"{incident.wrong_rate:.1%}"
    cells[2].caption(f"of {incident.served.labelled:,} labelled ({wrong}); {incident.served.requests:,} answers in all")
    errors = "—" if incident.error_rate is None else f"{incident.error_rate:.2%}"
    cells[3].metric("Error rate (failed requests)", errors)
    cells[3].caption(f"{incident.served.failed:,} failed of {incident.served.requests:,}")
    if incident.trajectory:
        st.plotly_chart(evidence_charts.sprt_trajectory(
            incident.trajectory, incident.lower, incident.upper,
            title=f"Quality test of v{incident.bad_version} up to the rollback"), key="incident_sprt")
        st.caption("The watchdog's sequential test on the bad version's labelled answers, label by label: "
                   "wrong answers push it up, right ones down. A healthy version stays under the red line; "
                   "this one crossed it (red cross) and was rolled back.")
    else:
        st.caption("No quality-test trajectory was kept with this rollback (taken before the watchdog "
                   "evaluated the version, or before Vigil kept trajectories).")


def _thread(incident: Incident) -> None:
    st.subheader("Slack thread")
    slack_on = get_settings().slack_enabled
    if not slack_on:
        st.caption("Slack is not configured (set VIGIL_SLACK_BOT_TOKEN or VIGIL_SLACK_WEBHOOK_URL): "
                   "below is what Vigil would have sent.")
    if not incident.messages:
        st.caption("No message was written for this incident.")
    for message in incident.messages:
        st.caption(f"{message.kind} · {message.created_at:%Y-%m-%d %H:%M:%S} UTC · "
                   f"{common.delivery_line(message.delivered_at, message.attempts, message.last_error, slack_on)}")
        st.code(message.text, language=None)


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


@st.fragment(run_every=common.REFRESH)
def incident_page() -> None:
    url = common.store_url()
    every_model = st.toggle("All models", value=False, key="incidents_all_models")
    listed = _listed(url, None if every_model else common.view().model_name)
    st.caption(f"{len(listed)} rollback{'' if len(listed) == 1 else 's'} · mean time to recover {duration(mean_seconds_to_recover(listed))} "
               "(from the bad version's first answer to the restored version's first answer)")
    incident = _choose(listed)
    if incident is None:
        st.info("No rollback yet: an incident is written for every automatic or manual rollback.")
        return
    st.header(f"{incident.model_name}: v{incident.bad_version} → v{incident.restored_version}")
    st.text(f"{narration(incident)}.")  # as text: a reason is an operator's words, not markup
    cells = st.columns(3)
    cells[0].metric("Time to recover", duration(incident.seconds_to_recover))
    cells[1].metric("Rolled back after the promotion", duration(incident.seconds_after_promotion))
    cells[2].metric("By", "the watchdog" if incident.automatic else incident.actor)
    st.text(f"Reason: {incident.reason}")
    _timeline(incident)
    _evidence(incident)
    _thread(incident)


if not common.no_model():
    incident_page()
