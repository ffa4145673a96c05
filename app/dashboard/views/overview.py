"""Overview: per model, the champion and since when, its health, the watchdog's live evidence (its
quality test against the boundaries, latency and error rate so far), the last hour's quality, p95
latency, error rate and drift share against their limits, open alerts, rollbacks and the mean
time to recover."""

import pandas as pd
import streamlit as st

from app.dashboard import common, live_panel
from monitoring.incidents import duration

STATE_MARK = {"ok": ":green[:material/check_circle:]", "breach": ":red[:material/error:]",
              "no data": ":gray[:material/help:]"}
HEALTH_MARK = {"healthy": ":green[:material/check_circle:]", "degraded": ":orange[:material/warning:]",
               "bad": ":red[:material/error:]", "unknown": ":gray[:material/help:]"}

st.title("Overview")
st.caption("Per model: what the watchdog knows now (every few seconds), then the last 60 minutes of "
           "monitoring windows against the watchdog's limits.")
st.caption(common.data_range(common.store_url()), help="retention: VIGIL_RETENTION_* settings, `vigil prune`")


def _number(value, pattern: str) -> str:
    return "—" if value is None or pd.isna(value) else pattern.format(value)


def _since(value) -> str:
    return "—" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")


@st.fragment(run_every=live_panel.LIVE_REFRESH)
def models() -> None:
    frame = common.overview(common.store_url(), common.now_minute())
    if frame.empty:
        st.info("No model in Vigil's store yet: train one with `vigil train`.")
        return
    for row in frame.itertuples():
        with st.container(border=True):
            st.subheader(f"{row.model}")
            first = st.columns(4)
            first[0].metric("Champion", f"v{row.champion}" if row.champion is not None and pd.notna(row.champion)
                            else "none", help=f"by {row.moved_by}")
            first[0].caption(f"since {_since(row.champion_since)}")
            first[1].metric(f"{HEALTH_MARK.get(row.health, HEALTH_MARK['unknown'])} Health", row.health)
            first[2].metric("Open alerts", int(row.open_alerts))
            first[3].metric("Mean time to recover (30 d)", duration(row.mttr_seconds),
                            help="per rollback: from the bad version's first answer to the restored "
                                 "version's first answer; see the Incidents page")
            count = int(row.rollbacks_30d)
            first[3].caption(f"{count} rollback{'' if count == 1 else 's'}, {int(row.auto_rollbacks_30d)} by the watchdog")
            if row.rollbacks_30d:
                first[3].page_link("views/incidents.py", label="Incidents", icon=":material/history:")
            live_panel.show(live_panel.read(common.store_url(), row.model, common.champion_alias()),
                            key=f"live_{row.model}")
            st.caption("Monitoring windows of the last 60 minutes, against the watchdog's limits:")
            second = st.columns(4)
            second[0].metric(f"{STATE_MARK[row.quality_state]} {row.quality_metric}",
                             _number(row.quality, "{:.3f}"))
            second[0].caption(f"limit {_number(row.quality_limit, '{:.3f}')} · {row.labelled:,} labelled")
            second[1].metric(f"{STATE_MARK[row.latency_state]} p95 latency", common.milliseconds(row.latency_p95_ms))
            second[1].caption(f"SLO {row.latency_p95_limit:.0f} ms")
            second[2].metric(f"{STATE_MARK[row.error_state]} error rate", _number(row.error_rate, "{:.2%}"))
            second[2].caption(f"limit {row.error_rate_limit:.0%}")
            second[3].metric(f"{STATE_MARK[row.drift_state]} drift share", _number(row.drift_share, "{:.0%}"))
            second[3].caption(f"dataset drift at {row.drift_share_limit:.0%} · data as of {_since(row.as_of)}")


models()
