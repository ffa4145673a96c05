"""What every dashboard page shares: the store URL, cached queries, the sidebar's model and time
range, and the MLflow registry. Queries are cached for a short time (pages refresh themselves),
and the cache is cleared after an operator acts so the change shows at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from app.dashboard import auth
from app.dashboard.charts import Span
from monitoring.runtime import Runtime
from monitoring.settings import get_settings
from monitoring.store import dashboard_queries, dashboard_summaries
from monitoring.store.engine import utcnow
from monitoring.watchdog import model_policy

REFRESH = "30s"
TTL = 20
RANGES = {"Last 15 minutes": timedelta(minutes=15), "Last hour": timedelta(hours=1),
          "Last 6 hours": timedelta(hours=6), "Last 24 hours": timedelta(days=1),
          "Last 7 days": timedelta(days=7), "Last 30 days": timedelta(days=30),
          "Last 90 days": timedelta(days=90)}


WIDEST_DEFAULT = "Last 24 hours"


def default_range(oldest: datetime | None, now: datetime) -> str:
    """The range a new session opens on: the shortest that holds all the stored data, at most a
    day (in a demo's first minutes a day-wide axis would squeeze the story into one pixel)."""
    return next(name for name, length in RANGES.items()
                if name == WIDEST_DEFAULT or (oldest is not None and now - length <= oldest))


DRIFT_POINTS = 200  # heatmap columns at most (the line charts keep the store's default)


@dataclass(frozen=True)
class View:
    model_name: str | None
    start: datetime
    end: datetime

    @property
    def span(self) -> Span:
        """The line charts' time axis: the range, in buckets sized from it."""
        return self._span(dashboard_queries.bucket_seconds(self.start, self.end))

    @property
    def drift_span(self) -> Span:
        """The drift heatmap's time axis: coarser buckets, so each cell can be seen."""
        return self._span(dashboard_queries.bucket_seconds(self.start, self.end, max_points=DRIFT_POINTS))

    def _span(self, bucket_seconds: int) -> Span:
        """Buckets no finer than a monitoring window: a finer one would cut every line into dots."""
        return Span(self.start, self.end, max(bucket_seconds, get_settings().window_minutes * 60))


def runtime() -> Runtime:
    """The settings, the store and the registry, as the operator's actions take them."""
    settings = get_settings()
    return Runtime(settings, _registry(settings.mlflow_tracking_uri))


@st.cache_resource(show_spinner=False)
def _registry(tracking_uri: str):
    """One MLflow registry client per tracking URI, made on first use inside a script run."""
    return Runtime(get_settings()).registry


def store_url() -> str:
    """Where the pages read: the read-only role when VIGIL_DATABASE_READ_URL is set. An operator's
    actions and the login audit write through ``runtime().store_url`` (the owner)."""
    return get_settings().read_url


def champion_alias() -> str:
    return get_settings().champion_alias


def registry():
    return runtime().registry


def now_minute() -> datetime:
    """Now, to the minute: cached queries keyed on it are shared for a minute's worth of reruns."""
    return utcnow().replace(second=0, microsecond=0)


@st.cache_data(ttl=TTL, show_spinner=False)
def model_names(url: str) -> list[str]:
    return dashboard_queries.model_names(url)


@st.cache_data(ttl=TTL, show_spinner=False)
def policy(url: str, model_name: str) -> model_policy.PolicyView:
    """The watchdog's policy for the model: its overrides over the ``VIGIL_*`` defaults."""
    return model_policy.view(url, get_settings().watchdog, model_name)


@st.cache_data(ttl=TTL, show_spinner=False)
def overview(url: str, now: datetime) -> pd.DataFrame:
    return dashboard_summaries.overview(url, get_settings(), now=now)


@st.cache_data(ttl=TTL, show_spinner=False)
def series(url: str, model_name: str, metrics: tuple[str, ...], span: Span) -> pd.DataFrame:
    return dashboard_queries.series(url, model_name, metrics, span.start, span.end,
                                    bucket=span.bucket_seconds)


@st.cache_data(ttl=TTL, show_spinner=False)
def alias_moves(url: str, model_name: str) -> pd.DataFrame:
    return dashboard_queries.registry_events(url, model_name, alias_only=True)


@st.cache_data(ttl=TTL, show_spinner=False)
def drift_matrix(url: str, model_name: str, span: Span) -> pd.DataFrame:
    return dashboard_queries.drift_matrix(url, model_name, span.start, span.end,
                                          bucket=span.bucket_seconds)


@st.cache_data(ttl=TTL, show_spinner=False)
def data_quality_matrix(url: str, model_name: str, span: Span) -> pd.DataFrame:
    return dashboard_queries.data_quality_matrix(url, model_name, span.start, span.end,
                                                 bucket=span.bucket_seconds)


@st.cache_data(ttl=TTL, show_spinner=False)
def drift_windows(url: str, model_name: str) -> pd.DataFrame:
    return dashboard_queries.drift_windows(url, model_name)


@st.cache_data(ttl=TTL, show_spinner=False)
def alerts(url: str, model_name: str | None, state: str | None) -> pd.DataFrame:
    return dashboard_queries.alerts(url, model_name, state)


@st.cache_data(ttl=TTL, show_spinner=False)
def oldest_prediction(url: str) -> datetime | None:
    from monitoring.store.data_range import oldest_prediction

    return oldest_prediction(url)


@st.cache_data(ttl=TTL, show_spinner=False)
def data_range(url: str) -> str:
    """One line: how long data is kept, and the oldest prediction still stored."""
    from monitoring.retention.policy import describe

    return describe(get_settings().retention, oldest_prediction(url))


def milliseconds(value: float | None) -> str:
    """A latency as people read it: "0.4 ms" for a fast model (not "0 ms"), "253 ms" for a slow one."""
    if value is None or pd.isna(value):
        return "—"
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def critical_banner() -> None:
    """Every page opens with the critical alerts firing now (a champion the API cannot load, a
    silent watchdog ...), whatever model is chosen: they need someone before anything else."""
    firing = alerts(store_url(), None, "firing")
    for alert in firing[firing["severity"] == "critical"].itertuples() if not firing.empty else ():
        title = alert.title.removeprefix(f"{alert.model_name}: ")
        st.error(f"**{alert.model_name}**: {title} (firing since {alert.opened_at:%Y-%m-%d %H:%M} UTC; "
                 "see Alerts)", icon=":material/error:")


def delivery_line(delivered_at, attempts: int, last_error: str | None, slack_on: bool) -> str:
    """Whether Slack took an outbox message, as the Alerts and Incidents pages say it."""
    if delivered_at is not None and not pd.isna(delivered_at):
        return f"delivered {pd.Timestamp(delivered_at):%Y-%m-%d %H:%M UTC}"
    if not slack_on and not attempts:  # tried: a deliverer (the watchdog) has Slack
        return "not sent: Slack is not configured"
    error = f": {last_error}" if last_error else ""
    return f"not delivered yet ({attempts} attempts{error})"


def after_action() -> None:
    """Forget cached reads so every page shows what the operator just changed."""
    st.cache_data.clear()


def sidebar() -> View:
    """The sidebar: model, time range, operator login. Returns the chosen view."""
    url = store_url()
    with st.sidebar:
        names = model_names(url)
        default = get_settings().model_name
        model_name = st.selectbox(
            "Model", names, index=names.index(default) if default in names else 0, key="model",
            placeholder="no models yet",
        ) if names else None
        if "range" not in st.session_state:  # chosen once per session: later runs keep the user's choice
            st.session_state["range"] = default_range(oldest_prediction(url), utcnow())
        span = st.selectbox("Time range", list(RANGES), key="range")
        st.divider()
        auth.login_panel()
    end = now_minute() + timedelta(minutes=1)
    return View(model_name, end - RANGES[span], end)


def view() -> View:
    """The view chosen in the sidebar for this run (set by the entry script)."""
    return st.session_state["vigil_view"]


def no_model() -> bool:
    """Say so and stop the page's content when the store knows no model yet."""
    if view().model_name is None:
        st.info("Vigil's store has no model yet: train one (`vigil train`), adopt one of your own "
                "(`vigil adopt NAME`, or the Registry page) or seed a demo (`python -m cli.demo_seed`).")
        return True
    return False
