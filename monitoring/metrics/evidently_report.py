"""Evidently, behind one module: the human-readable drift report, and Evidently's own verdicts.

Vigil computes drift itself (`monitoring.metrics.drift`); Evidently renders the HTML report the dashboard
links to, on a bounded random sample because it is slow on large data, and its verdicts are the
yardstick the tests hold `monitoring.metrics.drift` to. This is the only module that imports Evidently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.legacy.calculations.stattests import (
    chi_stat_test,
    jensenshannon_stat_test,
    ks_stat_test,
    wasserstein_stat_test,
    z_stat_test,
)
from evidently.presets import DataDriftPreset

from monitoring.metrics.drift import FeatureDriftConfig

# Evidently names a method it chose by its display name, one it was given by its name.
_METHOD_NAMES = {
    name: test.name
    for test in (
        ks_stat_test,
        chi_stat_test,
        z_stat_test,
        wasserstein_stat_test,
        jensenshannon_stat_test,
    )
    for name in (test.name, test.display_name)
}


def evidently_verdicts(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str],
    overrides: Mapping[str, FeatureDriftConfig] | None = None,
) -> dict[str, tuple[str, float, bool]]:
    """Evidently's DataDriftPreset on the full data: feature -> (method, score, drifted).

    Per-feature verdicts do not depend on the dataset's drift share, so Evidently keeps its own.
    """
    snapshot = _run(reference, current, numerical, categorical, overrides, drift_share=None)
    result = snapshot.dict()
    scores = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            scores[config["column"]] = (_METHOD_NAMES[config["method"]], float(metric["value"]))
    drifted = {}
    for test in result["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith(":ValueDrift"):
            drifted[params["column"]] = test["status"] == "FAIL"
    return {
        feature: (method, score, drifted[feature]) for feature, (method, score) in scores.items()
    }


def save_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str],
    path: str | Path,
    sample_rows: int = 5000,
    seed: int = 0,
    overrides: Mapping[str, FeatureDriftConfig] | None = None,
    *,
    drift_share: float,
) -> Path:
    """Write Evidently's HTML drift report on at most `sample_rows` random rows of each side.

    A sample of at most 1000 reference rows makes Evidently pick the small-sample tests (KS,
    chi-square); pass the methods Vigil chose on the full data as `overrides` to keep them.
    `drift_share` is the share of drifted features from which the report calls the dataset drifted.
    """
    if sample_rows < 1:
        raise ValueError(f"sample_rows must be at least 1, got {sample_rows}")
    columns = [*numerical, *categorical]
    samples = []
    for label, frame in (("reference", reference), ("current", current)):
        missing = [name for name in columns if name not in frame.columns]
        if missing:
            raise ValueError(f"{label} data lacks feature columns: {missing}")
        if len(frame) == 0:
            raise ValueError(f"{label} data has no rows")
        rows = frame.sample(n=min(sample_rows, len(frame)), random_state=seed)
        samples.append(rows[columns].reset_index(drop=True))
    snapshot = _run(*samples, numerical, categorical, overrides, drift_share)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path


def _run(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str],
    overrides: Mapping[str, FeatureDriftConfig] | None,
    drift_share: float | None,
):
    overrides = overrides or {}
    definition = DataDefinition(
        numerical_columns=list(numerical), categorical_columns=list(categorical)
    )
    share = {} if drift_share is None else {"drift_share": drift_share}
    preset = DataDriftPreset(
        columns=[*numerical, *categorical],
        **share,
        per_column_method={f: c.method for f, c in overrides.items() if c.method is not None}
        or None,
        per_column_threshold={
            f: c.threshold for f, c in overrides.items() if c.threshold is not None
        }
        or None,
    )
    report = Report([preset], include_tests=True)
    return report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
