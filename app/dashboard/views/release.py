"""Release: the running canary or shadow of a challenger beside the champion, both side by side
over time, the judge's progress toward a verdict, Promote and Abort for an operator, and the last
ended releases. Reads through ``monitoring.watchdog.release_view``; acts only through
``monitoring.registry.releases`` (locked, audited, as ``vigil canary promote|abort``)."""

from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from app.dashboard import auth, charts, common, release_charts
from app.dashboard.charts import Span
from monitoring.registry.promotion import PromotionError
from monitoring.registry.releases import end_release_by_operator
from monitoring.settings import get_settings
from monitoring.watchdog import release_view

EMPTY = ("No release running; start one with `vigil canary start VERSION --share 0.1` "
         "(or `vigil shadow start VERSION`, or `POST /operator/canary`).")

st.title("Release")


@st.cache_data(ttl=common.TTL, show_spinner=False)
def _read(url: str, model_name: str, now: datetime):
    """The releases and, for a running one, its arms over time and the judge's path (``url`` keys the cache)."""
    settings = get_settings()
    running, ended = release_view.summaries(settings, model_name, now=now)
    if running is None:
        return None, ended, None, None, None
    bucket = release_view.bucket_seconds(running, now)
    return (running, ended, bucket, release_view.arms_over_time(settings, running, bucket),
            release_view.judge_path(settings, running, bucket))


def _names(running) -> dict[str, str]:
    return {"champion": f"v{running.champion_version} (champion)",
            "challenger": f"v{running.challenger_version} ({running.mode})"}


def header(running) -> None:
    started = running.started_at
    st.markdown(f"**{running.mode.capitalize()} of v{running.challenger_version} against champion "
                f"v{running.champion_version}** (release {running.id}), started {started:%Y-%m-%d %H:%M} UTC by "
                f"{running.started_by}.")
    cells = st.columns(4)
    shown = "answers" if running.mode == "canary" else "also scores"
    cells[0].metric("Share", f"{running.share:.0%}", help=f"of the requests the challenger {shown}")
    cells[1].metric("Bake time left", f"{running.bake_minutes_left:.0f} min" if running.bake_minutes_left
                    else "baked", help="no promotion before")
    labels = running.numbers.get("challenger labels")
    cells[2].metric("Challenger labels", "—" if labels is None else f"{labels:,}")
    cells[3].metric("Judge says", running.decision or "—")
    st.caption(f"Judge: {running.reason}")


@st.fragment(run_every=common.REFRESH)
def evidence(model_name: str) -> None:
    now = common.now_minute()
    running, _ended, bucket, frame, path = _read(common.store_url(), model_name, now)
    if running is None:
        st.info(EMPTY)
        return
    header(running)
    start = pd.Timestamp(running.started_at).floor(f"{bucket}s").to_pydatetime()
    span = Span(start, max(now + timedelta(minutes=1), start + timedelta(seconds=bucket)), bucket)
    names, size = _names(running), charts.bucket_label(bucket)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(release_charts.arms(frame, "quality", names, span=span, title="Quality",
                                            y_title="share of labels right", y_range=[0.0, 1.0]), key="quality")
        st.caption(f"Share of labelled predictions each version got right per {size} bucket, with its 95 % band. "
                   "Healthy: the challenger's line inside or above the champion's band.")
        st.plotly_chart(release_charts.arms(frame, "traffic share", names, span=span, title="Traffic share",
                                            y_title="share", y_range=[0.0, 1.0]), key="share")
        st.caption(f"Share of the requests the challenger {'answered' if running.mode == 'canary' else 'also scored'}. "
                   f"Healthy: steady near the release's {running.share:.0%}.")
    with right:
        st.plotly_chart(release_charts.arms(frame, "latency p95", names, span=span, title="Latency p95",
                                            y_title="ms"), key="latency")
        st.caption("95th percentile latency of each version. Healthy: the challenger close to the champion "
                   "(the judge aborts above 1.5 times the champion's p95 and 25 ms slower).")
        if running.mode == "shadow":
            st.plotly_chart(release_charts.arms(frame, "agreement", names, span=span, title="Agreement",
                                                y_title="share of pairs", y_range=[0.0, 1.0]), key="agreement")
            st.caption("Share of shadowed requests where both versions gave the same answer. Healthy: high "
                       "and steady; the judge weighs only the pairs where one of them was wrong.")
    if path is None or path.empty:
        st.info("The judge's progress shows once both versions have labels.")
        return
    st.plotly_chart(release_charts.judge_progress(path, title="The judge's progress toward a verdict"),
                    key="judge")
    st.caption("Evidence after each bucket's labels. Healthy: the green line (not worse) climbs to its dotted "
               "line while the red one (worse) stays well below its own; the judge promotes at the green line "
               "once baked and with enough labels, and aborts at the red one.")


def actions(model_name: str) -> None:
    """Promote or abort the running release: shown to an operator only."""
    if auth.operator() is None:
        st.caption("Promote or abort needs an operator login (sidebar).")
        return
    st.subheader("Decide now")
    reason = st.text_input("Reason (required, goes into the audit trail and the release's Slack thread)",
                           key="release_reason").strip()
    left, right = st.columns(2)
    decision = ("promote" if left.button("Promote the challenger", type="primary", key="release_promote")
                else "abort" if right.button("Abort the release", key="release_abort") else None)
    if decision is None:
        return
    actor = auth.require_operator(f"release_{decision}", model_name)
    if actor is None:
        return
    try:
        release = end_release_by_operator(common.runtime(), model_name=model_name, decision=decision,
                                          actor=actor, reason=reason, channel="dashboard")
    except PromotionError as error:
        auth.record(actor, f"release_{decision}", allowed=False, model_name=model_name, detail=f"refused: {error}")
        st.error(f"Refused: {error}")
        return
    common.after_action()
    st.session_state["vigil_flash"] = f"Release {release.id} {release.state} by {actor}"
    st.rerun()


def past(model_name: str) -> None:
    _running, ended, *_ = _read(common.store_url(), model_name, common.now_minute())
    if not ended:
        return
    st.subheader("Ended releases")
    st.dataframe(pd.DataFrame([{
        "release": r.id, "mode": r.mode, "challenger": r.challenger_version, "champion": r.champion_version,
        "share": r.share, "state": r.state, "started": r.started_at, "ended": r.ended_at, "by": r.ended_by,
        "reason": r.reason} for r in ended]), hide_index=True, key="ended_releases")


if flash := st.session_state.pop("vigil_flash", None):
    st.success(flash)
if not common.no_model():
    name = common.view().model_name
    evidence(name)
    if _read(common.store_url(), name, common.now_minute())[0] is not None:
        actions(name)
    past(name)
