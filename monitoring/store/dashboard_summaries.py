"""The dashboard's per-model summaries: the Overview page's row per model, judged against the
watchdog's limits with the mean time to recover from rollbacks, and each version's production
record on the Registry page.

Built from the queries of ``monitoring.store.dashboard_queries``; the judging and the record are
pure functions over their DataFrames.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

import pandas as pd

from monitoring import metric_names
from monitoring.incidents import assemble, mean_seconds_to_recover
from monitoring.store import dashboard_queries as queries
from monitoring.store import incidents as store_incidents
from monitoring.store.engine import utcnow
from monitoring.watchdog import model_policy


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


def recovery(url: str, model_name: str, now: datetime, days: int = 30, limit: int = 50) -> dict:
    """The model's rollbacks in the last ``days`` (the newest ``limit``): how many, how many by the
    watchdog, and their mean time to recover in seconds (``monitoring.incidents``)."""
    told = [assemble(found) for _name, move in store_incidents.rollbacks(
        url, model_name, since=now - timedelta(days=days), limit=limit)
        if (found := store_incidents.facts(url, move.id)) is not None]
    return {"rollbacks_30d": len(told), "auto_rollbacks_30d": sum(i.automatic for i in told),
            "mttr_seconds": mean_seconds_to_recover(told)}


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
    p95 latency, error rate and drift share against their limits, open alerts, rollbacks in the
    last 30 days and their mean time to recover."""
    now = now or utcnow()
    champs = queries.champions(url, settings.champion_alias).set_index("model_name")
    firing = queries.open_alert_counts(url)
    policies = {v.model_name: v.policy for v in model_policy.views(url, settings.watchdog, settings.champion_alias)}
    rows = []
    for name in queries.model_names(url):
        policy = policies.get(name, settings.watchdog)
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
            quality_limit = (baseline + policy.quality_abs_drop if metric in metric_names.LOWER_IS_BETTER
                             else baseline - policy.quality_abs_drop)
        quality = value(metric, "weighted")
        rows.append({
            "model": name, "champion": version,
            "champion_since": champs["since"].get(name), "moved_by": champs["actor"].get(name),
            "health": record["state"].get(version, "unknown") if version is not None else "unknown",
            "as_of": until, "quality_metric": metric, "quality": quality, "quality_limit": quality_limit,
            "quality_state": judge(quality, quality_limit, lower_is_better=metric in metric_names.LOWER_IS_BETTER),
            "labelled": int(recent.at[metric, "samples"]) if metric in recent.index else 0,
            "latency_p95_ms": value(metric_names.LATENCY_P95), "latency_p95_limit": policy.latency_p95_slo_ms,
            "latency_state": judge(value(metric_names.LATENCY_P95), policy.latency_p95_slo_ms, lower_is_better=True),
            "error_rate": value(metric_names.ERROR_RATE), "error_rate_limit": policy.error_rate_limit,
            "error_state": judge(value(metric_names.ERROR_RATE), policy.error_rate_limit, lower_is_better=True),
            "drift_share": value(metric_names.DRIFT_SHARE), "drift_share_limit": policy.drift_share,
            "drift_state": judge(value(metric_names.DRIFT_SHARE), policy.drift_share, lower_is_better=True),
            "throughput_rps": value(metric_names.THROUGHPUT),
            "open_alerts": firing.get(name, 0),
            **recovery(url, name, now),
        })
    return pd.DataFrame(rows)
