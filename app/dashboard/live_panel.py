"""The watchdog's live evidence about a champion, shown on Overview and Quality: what the watchdog
knows now (labels since the champion took over, its quality test against the two boundaries,
latency and error rate so far, how long ago it looked), read from the store every few seconds."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.dashboard import common, evidence_charts
from monitoring.store import dashboard_queries
from monitoring.store.engine import utcnow
from monitoring.watchdog.live import LiveEvidence, live_evidence
from monitoring.watchdog.trajectory import LIMIT

LIVE_REFRESH = "5s"
VERDICT_MARK = {"degraded": ":red[:material/error:]", "healthy so far": ":green[:material/check_circle:]",
                "watching": ":orange[:material/visibility:]", "no evidence yet": ":gray[:material/help:]"}


@st.cache_data(ttl=2, show_spinner=False)
def read(url: str, model_name: str, alias: str) -> LiveEvidence | None:
    """The champion's live evidence (None: the model has no champion in Vigil's history)."""
    champions = dashboard_queries.champions(url, alias)
    row = champions[champions["model_name"] == model_name]
    if row.empty or pd.isna(row["version"].iloc[0]):
        return None
    since = pd.Timestamp(row["since"].iloc[0]).to_pydatetime()
    return live_evidence(model_name, int(row["version"].iloc[0]), since,
                         dashboard_queries.model_control(url, model_name), utcnow())


def _ago(seconds: float | None) -> str:
    return "never" if seconds is None else f"{max(seconds, 0):.0f} s ago"  # clocks a little apart: "0 s"


def show(evidence: LiveEvidence | None, key: str, *, chart: bool = True) -> None:
    """The numbers in a row of metrics, then the test's trajectory with its caption."""
    if evidence is None:
        st.caption("No champion in Vigil's history yet: the watchdog has nothing to judge.")
        return
    mark = VERDICT_MARK[evidence.verdict]
    st.markdown(f"**{mark} Watchdog now: v{evidence.version} {evidence.verdict}** · took over "
                f"{evidence.took_over_at:%Y-%m-%d %H:%M:%S} UTC · last evaluation "
                f"{_ago(evidence.seconds_since_evaluation)}")
    if not evidence.current:
        st.caption("The watchdog has not evaluated this champion since it took over (is `vigil watch` "
                   "or the vigil_watchdog DAG running?).")
        return
    cells = st.columns(4)
    accuracy = "—" if evidence.accuracy is None else f"{evidence.accuracy:.3f}"
    baseline = "—" if evidence.baseline_accuracy is None else f"{evidence.baseline_accuracy:.3f}"
    cells[0].metric("Labels since it took over", f"{evidence.labels:,}")
    cells[0].caption(f"accuracy {accuracy} · baseline {baseline}")
    bounds = ("no baseline: not tested" if evidence.upper is None
              else f"degraded at {evidence.upper:.2f}, healthy at {evidence.lower:.2f}")
    cells[1].metric("Quality test (LLR)", f"{evidence.llr:.2f}")
    cells[1].caption(bounds)
    cells[2].metric("p95 latency (last step)", common.milliseconds(evidence.latency_p95_ms))
    cells[2].caption(f"{evidence.requests:,} requests judged so far")
    rate = "—" if evidence.error_rate is None else f"{evidence.error_rate:.2%}"
    cells[3].metric("Error rate so far", rate)
    cells[3].caption(f"{evidence.failed:,} failed")
    if chart and evidence.trajectory:
        st.plotly_chart(evidence_charts.sprt_trajectory(
            evidence.trajectory, evidence.lower, evidence.upper,
            title=f"Quality test of v{evidence.version}, label by label (the last {LIMIT})", height=260), key=key)
        st.caption("The watchdog's sequential test on this champion's labelled answers: each wrong answer "
                   "pushes the line up, each right one down. Healthy: it drifts down to the green line "
                   "(a test passed) and starts again; at the red line the version is degraded and rolled back.")


@st.fragment(run_every=LIVE_REFRESH)
def fragment(model_name: str, key: str) -> None:
    """``show`` for one model, refreshed every ``LIVE_REFRESH`` (on a page part of its own)."""
    show(read(common.store_url(), model_name, common.champion_alias()), key)
