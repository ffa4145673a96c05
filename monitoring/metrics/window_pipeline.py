"""The monitoring run: turn the prediction log and the feedback into per-window metrics and drift.

For each window a run owns (see ``monitoring.metrics.windows``) and each model version that served in it:
quality against the feedback (with the number of labelled predictions), latency p50/p95/p99 (and
the latencies' histogram, which longer ranges merge: ``monitoring.store.latency_histograms``),
error rate, throughput and request count, the serving process's CPU and memory (latest window
only, when the API answers), data drift per feature against the version's reference data,
with Evidently's HTML report on a bounded sample (every drifted window, and one window in each
VIGIL_REPORT_EVERY_MINUTES otherwise), prediction drift (the version's classes and
scores against its own outputs on the reference: ``monitoring.metrics.prediction_drift``), and
estimated classification metrics
before the labels arrive (CBPE: ``monitoring.metrics.window_estimates``), and data quality per
feature (missing values,
values outside the reference's range, categories it never held: ``monitoring.metrics.data_quality``). Feedback that arrived during the run's interval
for predictions of older windows re-computes those windows' quality (late labels count in the
window of their PREDICTION). Every write is an upsert on the natural key: a re-run changes nothing.

A version-window's features and outputs are read once, from the prediction segments
(``monitoring.store.window_columns``), or from the JSON log when the segments do not hold exactly
the window's rows (``monitoring.store.window_queries``); both give the same frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from monitoring import metric_names
from monitoring.labels import label_texts
from monitoring.metrics import process_scrape
from monitoring.metrics.references import Reference, load_reference, take_first_healthy_window
from monitoring.metrics.windows import (
    Window,
    latest_closed_window,
    service_metrics,
    windows_ending_in,
)
from monitoring.runtime import Runtime
from monitoring.store import latency_histograms, metric_windows, window_columns, window_queries
from monitoring.store.engine import get_engine, session_scope, utcnow
from monitoring.store.window_columns import WindowColumns
from monitoring.training.datasets import infer_task
from monitoring.watchdog import model_policy

log = logging.getLogger(__name__)

MIN_DRIFT_ROWS = 30  # fewer current rows than this make a drift test say nothing


@dataclass
class MonitorSummary:
    windows: list[Window] = field(default_factory=list)  # the windows this run owns
    refreshed: list[tuple[str, Window]] = field(default_factory=list)  # late feedback: quality again
    served: list[tuple[str, int, Window]] = field(default_factory=list)  # (model, version, window)
    metric_rows: int = 0
    drift_rows: int = 0
    quality_check_rows: int = 0
    reports: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        log.warning(message)
        self.notes.append(message)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (an Airflow XCom, a CLI line)."""
        return {
            "windows": [[w.start.isoformat(), w.end.isoformat()] for w in self.windows],
            "refreshed": [[name, w.start.isoformat(), w.end.isoformat()] for name, w in self.refreshed],
            "served": [[name, version, w.start.isoformat()] for name, version, w in self.served],
            "metric_rows": self.metric_rows,
            "drift_rows": self.drift_rows,
            "quality_check_rows": self.quality_check_rows,
            "reports": list(self.reports),
            "notes": list(self.notes),
        }


def compute_windows(
    runtime: Runtime,
    *,
    model_name: str | None = None,
    start: datetime,
    end: datetime,
    reports: bool = True,
    now: datetime | None = None,
) -> MonitorSummary:
    """Compute the windows ending in ``(start, end]`` for one model (default: every known model)."""
    url, settings = runtime.store_url, runtime.settings
    now = now or utcnow()
    minutes = settings.window_minutes
    summary = MonitorSummary(windows=windows_ending_in(start, end, minutes))
    with get_engine(url).connect() as connection:
        models = [model_name] if model_name else window_queries.known_models(connection)
        # a grace of one window catches feedback committed just after the previous run looked
        touched = window_queries.windows_with_feedback_received(
            connection, start - timedelta(minutes=minutes), end, model_name, minutes)
    owned = set(summary.windows)
    refresh = sorted({(name, window) for name, window in touched
                      if name in models} - {(name, w) for name in models for w in owned},
                     key=lambda item: (item[0], item[1].start))
    summary.refreshed = [(name, w) for name, w in refresh if w.end <= end]
    process = {}
    if latest_closed_window(now, minutes) in owned:
        process = process_scrape.scrape(settings.api_url)
    context = _Context(runtime, now, reports, summary)
    for window in summary.windows:
        for name in models:
            context.full_window(name, window, process if window == latest_closed_window(now, minutes) else {})
    for name, window in summary.refreshed:
        context.quality_only(name, window)
    return summary


@dataclass
class _Context:
    runtime: Runtime
    now: datetime
    reports: bool
    summary: MonitorSummary
    references: dict[tuple[str, int], Reference | None] = field(default_factory=dict)
    reference_outputs: dict[tuple[str, int], pd.DataFrame | None] = field(default_factory=dict)
    # the last version-window's outputs: the estimate and the prediction drift both need them
    window_outputs: tuple[tuple[str, int, Window], pd.DataFrame] | None = None
    # the last version-window's segments (None: read the JSON path), and its successful requests
    window_segments: tuple[tuple[str, int, Window], WindowColumns | None] | None = None
    successes: dict[tuple[str, int, Window], int] = field(default_factory=dict)
    drift_shares: dict[str, float] = field(default_factory=dict)  # per model, from its watchdog policy

    def _drift_share(self, model_name: str) -> float:
        """The share of drifted features that makes the model's dataset drift (its own policy)."""
        if model_name not in self.drift_shares:
            with session_scope(self.runtime.store_url) as session:
                policy = model_policy.effective(session, self.runtime.settings.watchdog, model_name)
            self.drift_shares[model_name] = policy.drift_share
        return self.drift_shares[model_name]

    def full_window(self, model_name: str, window: Window, process: dict[str, float]) -> None:
        with get_engine(self.runtime.store_url).connect() as connection:
            served = window_queries.traffic(connection, window, model_name)
            if not served:
                return
            labelled = window_queries.labelled(connection, window, model_name)
            tasks = window_queries.version_tasks(connection, [model_name])
        metric_rows: list[dict[str, Any]] = []
        process_rows: list[dict[str, Any]] = []
        drift_rows: list[dict[str, Any]] = []
        check_rows: list[dict[str, Any]] = []
        histogram_rows = [latency_histograms.histogram_row(model_name=model_name, version=t.version, window=window,
                                                           counts=t.latency_histogram, computed_at=self.now)
                          for t in served if t.latency_histogram]
        for traffic in served:
            self.summary.served.append((model_name, traffic.version, window))
            self.successes[(model_name, traffic.version, window)] = traffic.successes
            metrics = service_metrics(window, traffic.requests, traffic.errors, traffic.percentiles,
                                      traffic.latency_samples)
            metrics |= _quality(tasks.get((model_name, traffic.version)),
                                labelled[labelled["version"] == traffic.version])
            metrics |= self._estimate(model_name, traffic.version, window, tasks)
            metric_rows += self._rows(model_name, traffic.version, window, metrics)
            process_rows += self._rows(model_name, traffic.version, window,
                                       {name: (value, 1) for name, value in process.items()})
            drift = self._drift(model_name, traffic.version, window)
            if drift is not None:
                share, rows, checks = drift
                check_rows += checks
                drift_rows += rows
                metric_rows += self._rows(model_name, traffic.version, window, {metric_names.DRIFT_SHARE: share})
        with session_scope(self.runtime.store_url) as session:
            metric_windows.upsert_metrics(session, metric_rows)
            metric_windows.insert_metrics_if_absent(session, process_rows)
            metric_windows.upsert_drift(session, drift_rows)
            metric_windows.upsert_quality_checks(session, check_rows)
            latency_histograms.upsert_histograms(session, histogram_rows)
        self.summary.metric_rows += len(metric_rows) + len(process_rows)
        self.summary.drift_rows += len(drift_rows)
        self.summary.quality_check_rows += len(check_rows)

    def _estimate(self, model_name: str, version: int, window: Window,
                  tasks: dict[tuple[str, int], str]) -> dict[str, tuple[float | None, int]]:
        from monitoring.metrics.window_estimates import estimate_window

        if tasks.get((model_name, version), "classification") != "classification":
            return {}
        estimate = estimate_window(self.runtime.store_url, model_name, version, window,
                                   self._outputs(model_name, version, window))
        if estimate.note:
            self.summary.notes.append(f"{model_name} v{version} {window.start.isoformat()}: "
                                      f"no estimated performance ({estimate.note})")
        return estimate.metrics

    def _outputs(self, model_name: str, version: int, window: Window) -> pd.DataFrame:
        key = (model_name, version, window)
        if self.window_outputs is None or self.window_outputs[0] != key:
            segments = self._segments(model_name, version, window)
            if segments is not None:
                self.window_outputs = key, segments.outputs()
            else:
                with get_engine(self.runtime.store_url).connect() as connection:
                    self.window_outputs = key, window_queries.outputs(connection, window, model_name, version)
        return self.window_outputs[1]

    def _segments(self, model_name: str, version: int, window: Window) -> WindowColumns | None:
        """The version-window's typed columns, read once for its outputs and its features."""
        key = (model_name, version, window)
        if self.window_segments is None or self.window_segments[0] != key:
            self.window_segments = None  # the last window's rows go before the next one's come
            with get_engine(self.runtime.store_url).connect() as connection:
                self.window_segments = key, window_columns.read(connection, window, model_name, version,
                                                                self.successes.get(key, -1))
        return self.window_segments[1]

    def _features(self, model_name: str, version: int, window: Window, reference: Reference) -> pd.DataFrame:
        segments = self._segments(model_name, version, window)
        current = None if segments is None else segments.features(reference.numerical, reference.categorical)
        if current is None:
            with get_engine(self.runtime.store_url).connect() as connection:
                current = window_queries.features(connection, window, model_name, version,
                                                  reference.numerical, reference.categorical)
        return current

    def quality_only(self, model_name: str, window: Window) -> None:
        with get_engine(self.runtime.store_url).connect() as connection:
            labelled = window_queries.labelled(connection, window, model_name)
            tasks = window_queries.version_tasks(connection, [model_name])
        rows = []
        for version, group in labelled.groupby("version"):
            rows += self._rows(model_name, int(version), window,
                               _quality(tasks.get((model_name, int(version))), group))
        with session_scope(self.runtime.store_url) as session:
            metric_windows.upsert_metrics(session, rows)
        self.summary.metric_rows += len(rows)

    def _rows(self, model_name: str, version: int, window: Window,
              metrics: dict[str, tuple[float | None, int]]) -> list[dict[str, Any]]:
        return [metric_windows.metric_row(model_name=model_name, version=version,
                                        window_start=window.start, window_end=window.end,
                                        metric=name, value=value, sample_count=count,
                                        computed_at=self.now)
                for name, (value, count) in metrics.items()]

    def _reference(self, model_name: str, version: int) -> Reference | None:
        key = (model_name, version)
        if key not in self.references:
            self.references[key] = load_reference(self.runtime, model_name, version)
        return self.references[key]

    def _drift(self, model_name: str, version: int, window: Window):
        from monitoring.metrics.drift import FeatureDriftConfig, compute_drift

        reference = self._reference(model_name, version)
        if reference is None:
            self._take_pending_reference(model_name, version, window)
            return None
        current = self._features(model_name, version, window, reference)
        if len(current) < MIN_DRIFT_ROWS:
            self.summary.note(f"{model_name} v{version} {window.start.isoformat()}: "
                              f"{len(current)} predictions, fewer than {MIN_DRIFT_ROWS}: drift skipped")
            return None
        try:
            result = compute_drift(reference.frame, current, reference.numerical, reference.categorical,
                                   drift_share=self._drift_share(model_name))
        except ValueError as error:
            self.summary.note(f"{model_name} v{version} {window.start.isoformat()}: drift skipped ({error})")
            return None
        report_path = None
        if self.reports and _wants_report(window, result.features, self.runtime.settings.report_every_minutes):
            methods = {f.feature: FeatureDriftConfig(method=f.method) for f in result.features
                       if _method_fits(f.method, f.feature in reference.numerical)}
            report_path = self._report(model_name, version, window, reference, current, methods)
        rows = [{"model_name": model_name, "model_version": version, "window_start": window.start,
                 "window_end": window.end, "feature": f.feature, "method": f.method,
                 "score": float(f.score), "threshold": float(f.threshold), "drifted": bool(f.drifted),
                 "reference_size": int(f.reference_size), "current_size": int(f.current_size),
                 "report_path": report_path, "computed_at": self.now}
                for f in result.features + self._prediction_drift(model_name, version, window, reference)]
        return (float(result.share_drifted), len(current)), rows, self._quality_checks(
            model_name, version, window, reference, current)

    def _prediction_drift(self, model_name: str, version: int, window: Window, reference: Reference) -> list:
        """The window's outputs against the version's outputs on its reference (none if it cannot
        be loaded or score them: said in the summary, feature drift still counts)."""
        from monitoring.metrics import prediction_drift as outputs
        from monitoring.registry.mlflow_registry import RegistryError

        key = (model_name, version)
        if key not in self.reference_outputs:
            try:
                self.reference_outputs[key] = outputs.reference_outputs(self.runtime, model_name, version, reference)
            except (RegistryError, ValueError, KeyError) as error:
                self.summary.note(f"{model_name} v{version}: prediction drift skipped ({error})")
                self.reference_outputs[key] = None
        expected = self.reference_outputs[key]
        if expected is None:
            return []
        logged = self._outputs(model_name, version, window)
        current = outputs.outputs_frame(logged["prediction"], logged["score"])
        return outputs.prediction_drift(expected, current, drift_share=self._drift_share(model_name))

    def _quality_checks(self, model_name: str, version: int, window: Window, reference: Reference,
                        current: pd.DataFrame) -> list[dict[str, Any]]:
        from monitoring.metrics import data_quality

        profiles = data_quality.profile(reference.frame, reference.numerical, reference.categorical)
        return [{"model_name": model_name, "model_version": version, "window_start": window.start,
                 "window_end": window.end, "feature": c.feature, "kind": c.check, "rate": c.rate,
                 "reference_rate": c.reference_rate, "threshold": c.threshold, "failed": c.failed,
                 "rows": c.rows, "computed_at": self.now}
                for c in data_quality.check_window(profiles, current)]

    def _take_pending_reference(self, model_name: str, version: int, window: Window) -> None:
        """An adopted version without reference data: its first healthy window becomes it."""
        def read_window(numerical: list[str], categorical: list[str]) -> pd.DataFrame:
            with get_engine(self.runtime.store_url).connect() as connection:
                return window_queries.features(connection, window, model_name, version,
                                               numerical, categorical)

        taken = take_first_healthy_window(self.runtime, model_name, version, read_window)
        if taken:
            self.references.pop((model_name, version), None)  # the next window is measured
            self.summary.note(f"{model_name} v{version}: its healthy window "
                              f"{window.start.isoformat()} ({taken} rows) is now its drift reference")
        else:
            self.summary.note(f"{model_name} v{version}: no reference data, drift skipped")

    def _report(self, model_name, version, window, reference, current, methods) -> str | None:
        from monitoring.metrics.evidently_report import save_drift_report
        from monitoring.metrics.report_files import report_path

        path = report_path(self.runtime.settings.var_dir, model_name, version, window.start, window.end)
        if not path.is_file():
            try:
                save_drift_report(reference.frame, current, reference.numerical, reference.categorical,
                                  path, sample_rows=self.runtime.settings.drift_sample_rows, overrides=methods,
                                  drift_share=self._drift_share(model_name))
            except Exception as error:  # noqa: BLE001 - a report is a nicety; the numbers still count
                self.summary.note(f"{model_name} v{version}: Evidently report failed ({error})")
                return None
        self.summary.reports.append(str(path))
        return str(path)


def _method_fits(method: str, numerical: bool) -> bool:
    from monitoring.metrics.drift import CATEGORICAL, METHOD_KINDS, NUMERICAL

    return (NUMERICAL if numerical else CATEGORICAL) in METHOD_KINDS[method]


def _quality(task: str | None, labelled: pd.DataFrame) -> dict[str, tuple[float | None, int]]:
    """Quality metrics of the labelled predictions of one version, each with the label count."""
    from monitoring.training.modeling import quality_metrics

    count = len(labelled)
    if count == 0:
        return {}
    if task is None:  # a version Vigil did not register: judge by the labels
        numbers = pd.to_numeric(labelled["label"], errors="coerce")
        task = infer_task(numbers) if numbers.notna().all() else "classification"
    if task == "regression":
        values = quality_metrics(task, pd.to_numeric(labelled["label"]),
                                 pd.to_numeric(labelled["prediction"]))
    else:
        score = labelled["score"].to_numpy(dtype=float, na_value=np.nan)
        predictions = pd.Series(label_texts(labelled["prediction"]), index=labelled.index)
        scored = not np.isnan(score).any()
        values = quality_metrics(task, pd.Series(label_texts(labelled["label"]), index=labelled.index), predictions,
                                 score if scored else None,
                                 positive_class(predictions.tolist(), score.tolist()) if scored else None)
    return {name: (value, count) for name, value in values.items()}


def positive_class(predictions: list[str | None], scores: list[float]) -> str | None:
    """The class whose probability the scores are: the predicted class with the higher mean
    score (a classifier predicts its positive class where that probability is high), or with one
    predicted class, that class when its mean score is at least one half. None: cannot tell.

    The prediction log keeps the positive class's probability (``vigil.positive_class``, or the
    model's last class), which need not be the last label in sorted order ("approved" of
    "approved" / "rejected"); reading it from the log keeps the window's ROC AUC, precision and
    recall about the class the model answers for.
    """
    sums: dict[str, list[float]] = {}
    for prediction, score in zip(predictions, scores, strict=True):
        if prediction is not None:
            sums.setdefault(prediction, []).append(score)
    means = {cls: sum(values) / len(values) for cls, values in sums.items()}
    if len(means) == 2:
        first, second = sorted(means, key=means.get)
        return second if means[second] > means[first] else None
    if len(means) == 1:
        (only, mean), = means.items()
        return only if mean >= 0.5 else None
    return None


def _wants_report(window: Window, features, every_minutes: int) -> bool:
    """A drifted window always gets its report, the others one window in every ``every_minutes``
    (the one starting on the period's boundary): a report costs seconds, the verdicts do not."""
    if any(feature.drifted for feature in features):
        return True
    return int(window.start.timestamp()) % (every_minutes * 60) < window.seconds
