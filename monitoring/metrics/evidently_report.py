"""Evidently, behind one module: the human-readable drift report, and Evidently's own verdicts.

Vigil computes drift itself (`monitoring.metrics.drift`); Evidently renders the HTML report the dashboard
links to, on a bounded random sample because it is slow on large data, and its verdicts are the
yardstick the tests hold `monitoring.metrics.drift` to. This is the only module that imports Evidently.

The report shows what clients sent, so it is made inert before it is stored: string values and
feature names are HTML-escaped before Evidently sees them (its charts read a little HTML in text),
and in the data block Evidently embeds in a ``<script>`` every ``<``, ``>`` and ``&`` is written as
a JSON ``\\u`` escape, so no value can close the script or open markup. A report whose layout is
not the one expected is not written at all.
"""

from __future__ import annotations

import html
import re
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
        samples.append(_escaped_sample(rows[columns].reset_index(drop=True), categorical))
    escaped = {name: html.escape(name) for name in columns}
    snapshot = _run(*samples, [escaped[n] for n in numerical], [escaped[n] for n in categorical],
                    {escaped[n]: config for n, config in (overrides or {}).items() if n in escaped},
                    drift_share)
    page = inert_report_html(snapshot.get_html_str(as_iframe=False))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def _escaped_sample(frame: pd.DataFrame, categorical: Sequence[str]) -> pd.DataFrame:
    """The sample with its string values and column names HTML-escaped (the same distributions)."""
    frame = frame.copy()
    for name in categorical:
        frame[name] = frame[name].map(lambda value: html.escape(value, quote=False) if isinstance(value, str) else value)
    return frame.rename(columns=html.escape)


_DASHBOARD_ID = re.compile(r"window\.drawDashboard\((metric_[0-9a-f]{32}),")
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def inert_report_html(page: str) -> str:
    """Evidently's standalone report with its embedded data unable to leave its ``<script>``.

    The data block opens with ``var <dashboard id> = `` and closes right before the ``</head>``
    that precedes the dashboard's root element; the id is a random uuid drawn after the data, so a
    value cannot fake either end. Inside, ``<``, ``>`` and ``&`` occur only in JSON strings, where
    their ``\\u`` escapes mean the same text. Raises ValueError when the layout is not that one.
    """
    ids = _DASHBOARD_ID.findall(page)
    if not ids:
        raise ValueError("Evidently's report has no dashboard call; not writing an unchecked report")
    dashboard_id = ids[-1]
    opening = f"<script>\n    var {dashboard_id} = "
    closing = f"\n</script>\n    </head>\n    <body>\n    <div id=\"root_{dashboard_id}\">"
    start, end = page.find(opening), page.rfind(closing)
    if start < 0 or end < start:
        raise ValueError("Evidently's report data block is not where expected; not writing it")
    data_start = start + len(opening)
    return page[:data_start] + page[data_start:end].translate(_JSON_ESCAPES) + page[end:]


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
