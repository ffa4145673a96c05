"""The dashboard's per-model summaries: the Overview page's row per model, judged against the
watchdog's limits, and each version's production record and rollbacks on the Registry page.

Built from the queries of ``monitoring.store.dashboard_queries``; the judging and the record are
pure functions over their DataFrames.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

import pandas as pd

from monitoring import metric_names
from monitoring.store import dashboard_queries as queries
from monitoring.store.engine import utcnow


def production_record(moves: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Pure: per version, how often and how long it held the alias, from alias moves (any order).

    Columns: ``version, times_champion, hours_champion, last_champion_until`` (None while it holds).
    """
    rows: dict[int, dict] = {}
    ordered = moves.sort_values(["created_at", "id"]) if not moves.empty else moves
    holder, held_since = None, None
    for move in ordered.itertuples():
        if holder is not None:
            record = rows.setdefault(holder, {"times_champion": 0, "hours_champion": 0.0})
            record["hours_champion"] += (move.created_at - held_since).total_seconds() / 3600
            record["last_champion_until"] = move.created_at
        if pd.notna(move.to_version):
            holder, held_since = int(move.to_version), move.created_at
            record = rows.setdefault(holder, {"times_champion": 0, "hours_champion": 0.0})
            record["times_champion"] += 1
        else:
            holder = None
    if holder is not None:
        rows[holder]["hours_champion"] += (now - held_since).total_seconds() / 3600
        rows[holder]["last_champion_until"] = None
    frame = pd.DataFrame([{"version": v, **r} for v, r in rows.items()],
                         columns=["version", "times_champion", "hours_champion", "last_champion_until"])
    return frame.sort_values("version").reset_index(drop=True)


def automatic_rollbacks(url: str, model_name: str, days: int = 30, now: datetime | None = None) -> pd.DataFrame:
    """Automatic rollbacks in the last ``days`` with their time to recover: from the first
    degradation alert about the rolled-back version (opened in the 24 h before) to the rollback."""
    now = now or utcnow()
    events = queries.registry_events(url, model_name, alias_only=True, since=now - timedelta(days=days))
    rollbacks = events[events["kind"] == "auto_rollback"]
    alerts = queries.degradation_alerts(url, model_name, now - timedelta(days=days + 1))
    return time_to_recover(rollbacks, alerts)


def time_to_recover(rollbacks: pd.DataFrame, degradation_alerts: pd.DataFrame) -> pd.DataFrame:
    """Pure: each rollback with ``detected_at`` (earliest degradation alert opened in the 24 h
    before it) and ``minutes_to_recover`` (None when no such alert exists)."""
    rows = []
    for rollback in rollbacks.itertuples():
        opened = degradation_alerts["opened_at"] if not degradation_alerts.empty else pd.Series(dtype=object)
        before = opened[(opened <= rollback.created_at)
                        & (opened >= rollback.created_at - timedelta(hours=24))]
        detected = before.min() if not before.empty else None
        rows.append({"created_at": rollback.created_at, "from_version": rollback.from_version,
                     "to_version": rollback.to_version, "reason": rollback.reason, "detected_at": detected,
                     "minutes_to_recover": (rollback.created_at - detected).total_seconds() / 60
                     if detected is not None else None})
    return pd.DataFrame(rows, columns=["created_at", "from_version", "to_version", "reason", "detected_at",
                                       "minutes_to_recover"])



# -- overview ------------------------------------------------------------------------------------
OVERVIEW_METRICS = (metric_names.ACCURACY, metric_names.ROC_AUC, metric_names.RMSE, metric_names.MAE, metric_names.LATENCY_P95, metric_names.ERROR_RATE, metric_names.DRIFT_SHARE,
                    metric_names.THROUGHPUT)


def primary_metric(eval_metrics: dict) -> str:
    """The metric a version is judged by: accuracy for a classifier, RMSE for a regressor."""
    return metric_names.RMSE if metric_names.RMSE in eval_metrics and metric_names.ACCURACY not in eval_metrics else metric_names.ACCURACY


def judge(value: float | None, limit: float | None, *, lower_is_better: bool) -> str:
    """Pure: ``ok``, ``breach`` or ``no data`` for a value against its limit."""
    if value is None or pd.isna(value) or limit is None:
        return "no data"
    breached = value > limit if lower_is_better else value < limit
    return "breach" if breached else "ok"


def _summary_value(recent: pd.DataFrame, key: str, column: str = "mean") -> float | None:
    found = key in recent.index and pd.notna(recent.at[key, column])
    return float(recent.at[key, column]) if found else None


def overview(url: str, settings, now: datetime | None = None, minutes: int = 60) -> pd.DataFrame:
    """One row per model: champion and since when, its health, the last ``minutes`` of quality,
    p95 latency, error rate and drift share against their limits, open alerts, automatic
    rollbacks in the last 30 days and their mean time to recover."""
    now = now or utcnow()
    champs = queries.champions(url, settings.champion_alias).set_index("model_name")
    firing = queries.open_alert_counts(url)
    rows = []
    for name in queries.model_names(url):
        version = champs["version"].get(name)
        version = int(version) if version is not None and pd.notna(version) else None
        record = queries.versions(url, name).set_index("version")
        evals = record["eval_metrics"].get(version, {}) if version is not None else {}
        metric = primary_metric(evals or {})
        until = queries.latest_window_end(url, name)
        recent = queries.recent_summary(url, name, OVERVIEW_METRICS, until, minutes) if until else pd.DataFrame()
        value = partial(_summary_value, recent)
        baseline = evals.get(metric)
        quality_limit = None
        if baseline is not None:
            quality_limit = (baseline + settings.watchdog.quality_abs_drop if metric in metric_names.LOWER_IS_BETTER
                             else baseline - settings.watchdog.quality_abs_drop)
        quality = value(metric, "weighted")
        rollbacks = automatic_rollbacks(url, name, now=now)
        rows.append({
            "model": name, "champion": version,
            "champion_since": champs["since"].get(name), "moved_by": champs["actor"].get(name),
            "health": record["state"].get(version, "unknown") if version is not None else "unknown",
            "as_of": until, "quality_metric": metric, "quality": quality, "quality_limit": quality_limit,
            "quality_state": judge(quality, quality_limit, lower_is_better=metric in metric_names.LOWER_IS_BETTER),
            "labelled": int(recent.at[metric, "samples"]) if metric in recent.index else 0,
            "latency_p95_ms": value(metric_names.LATENCY_P95), "latency_p95_limit": settings.watchdog.latency_p95_slo_ms,
            "latency_state": judge(value(metric_names.LATENCY_P95), settings.watchdog.latency_p95_slo_ms, lower_is_better=True),
            "error_rate": value(metric_names.ERROR_RATE), "error_rate_limit": settings.watchdog.error_rate_limit,
            "error_state": judge(value(metric_names.ERROR_RATE), settings.watchdog.error_rate_limit, lower_is_better=True),
            "drift_share": value(metric_names.DRIFT_SHARE), "drift_share_limit": settings.watchdog.drift_share,
            "drift_state": judge(value(metric_names.DRIFT_SHARE), settings.watchdog.drift_share, lower_is_better=True),
            "throughput_rps": value(metric_names.THROUGHPUT),
            "open_alerts": firing.get(name, 0),
            "auto_rollbacks_30d": len(rollbacks),
            "mean_minutes_to_recover": rollbacks["minutes_to_recover"].dropna().mean()
            if not rollbacks.empty else None,
        })
    return pd.DataFrame(rows)
