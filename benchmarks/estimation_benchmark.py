"""Benchmark: estimated performance (CBPE) before the labels arrive, on the demo's scenarios.

    .venv/bin/python benchmarks/estimation_benchmark.py [--windows 12] [--window-rows 2000] [--cost-rows 1000000]

The demo's model (Vigil's own pipeline, fitted on 5,000 loans) is calibrated on 5,000 labelled
predictions of its healthy traffic (what ``monitoring.metrics.window_estimates`` reads from the
store: the version's earlier labelled predictions). Then, per scenario (healthy, the demo's
covariate drift, which happens to make this model more accurate, a harmful covariate drift
towards the decision boundary -- applicants the model is unsure about, drawn from the same rule
-- and concept drift), ``--windows`` windows of ``--window-rows`` predictions: each window's estimated
accuracy against its realised accuracy (the labels the simulation knows). Time to the first
warning: with 5-minute windows and labels delayed by one hour, the estimate of the first window
after the drift starts warns at that window's end (at most 5 minutes plus the run); the labelled
quality test cannot start before the first label, one hour later. The first window whose
estimate is below the baseline by the watchdog's margin is reported, beside the realised one.

Cost, on one window of ``--cost-rows`` predictions: the three new signals (CBPE from the scores,
prediction drift of classes and scores, data quality of every feature) beside the feature drift
the monitoring run already computes (the baseline, measured in the same run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring.metrics import data_quality, drift, prediction_drift  # noqa: E402
from monitoring.metrics import estimated_performance as cbpe  # noqa: E402
from monitoring.settings import WatchdogPolicy  # noqa: E402
from monitoring.training import datasets, modeling  # noqa: E402
from monitoring.watchdog.sequential_test import quality_margin  # noqa: E402

WINDOW_MINUTES = 5
LABEL_DELAY_MINUTES = 60


def _scored(model, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    probability = model.predict_proba(frame)[:, list(model.classes_).index(1)]
    return probability, (probability > 0.5).astype(int)


HARMFUL = "harmful_covariate"


def _window(model, scenario: str, rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    if scenario != HARMFUL:
        data = datasets.generate(rows, seed, scenario)
        return data.X(), data.y()
    kept_x, kept_y, batch = [], [], 0
    while sum(len(x) for x in kept_x) < rows:  # healthy applicants, kept only near the boundary
        data = datasets.generate(rows * 4, seed * 100 + batch)
        probability, _ = _scored(model, data.X())
        near = np.abs(probability - 0.5) < 0.2
        kept_x.append(data.X()[near])
        kept_y.append(data.y()[near])
        batch += 1
    return pd.concat(kept_x).head(rows), pd.concat(kept_y).head(rows)


def _scenario(model, calibration, scenario: str, windows: int, rows: int) -> list[dict]:
    results = []
    for index in range(windows):
        features, labels = _window(model, scenario, rows, 1000 + index)
        probability, predicted = _scored(model, features)
        estimated = cbpe.estimate(calibration.transform(probability), predicted.astype(bool))["estimated_accuracy"]
        realised = float((predicted == labels.to_numpy()).mean())
        results.append({"scenario": scenario, "window": index, "estimated": estimated, "realised": realised})
    return results


def _cost(model, reference: pd.DataFrame, rows: int) -> dict[str, float]:
    current = datasets.generate_features(rows, 77, "covariate_drift")
    numerical, categorical = datasets.NUMERIC, datasets.CATEGORICAL
    probability, predicted = _scored(model, current)
    ref_probability, ref_predicted = _scored(model, reference)
    timings = {}
    started = time.perf_counter()
    drift.compute_drift(reference, current, numerical, categorical, drift_share=0.5)
    timings["feature drift (baseline)"] = time.perf_counter() - started
    started = time.perf_counter()
    cbpe.estimate(probability, predicted.astype(bool))
    timings["CBPE estimate"] = time.perf_counter() - started
    started = time.perf_counter()
    prediction_drift.prediction_drift(prediction_drift.outputs_frame(list(ref_predicted), list(ref_probability)),
                                      prediction_drift.outputs_frame(list(predicted), list(probability)),
                                      drift_share=0.5)
    timings["prediction drift"] = time.perf_counter() - started
    started = time.perf_counter()
    data_quality.check_window(data_quality.profile(reference, numerical, categorical), current)
    timings["data quality"] = time.perf_counter() - started
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--window-rows", type=int, default=2000)
    parser.add_argument("--cost-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    training = datasets.generate(5000, 0)
    model = modeling.build_pipeline(training).fit(training.X(), training.y())
    labelled = datasets.generate(5000, 1)
    probability, _ = _scored(model, labelled.X())
    calibration = cbpe.calibrate(probability, labelled.y().to_numpy())
    print(f"calibration on 5,000 labelled healthy predictions: {calibration.reason}")
    baseline = float(((probability > 0.5).astype(int) == labelled.y().to_numpy()).mean())
    margin = quality_margin(baseline, WatchdogPolicy())
    print(f"baseline accuracy {baseline:.3f}; the watchdog's margin {margin:.3f}")
    print(f"{'scenario':<19}{'mean |est - real|':>18}{'max':>8}{'mean est':>10}{'mean real':>10}  first warning")
    for scenario in ("healthy", "covariate_drift", HARMFUL, "concept_drift"):
        rows = _scenario(model, calibration, scenario, args.windows, args.window_rows)
        errors = [abs(r["estimated"] - r["realised"]) for r in rows]
        warned = next((r["window"] for r in rows if r["estimated"] < baseline - margin), None)
        truly = next((r["window"] for r in rows if r["realised"] < baseline - margin), None)
        when = "none" if warned is None else \
            f"window {warned + 1}: {(warned + 1) * WINDOW_MINUTES} min after the drift began"
        real = "never below" if truly is None else f"realised below from window {truly + 1}"
        print(f"{scenario:<19}{np.mean(errors):>18.3f}{max(errors):>8.3f}"
              f"{np.mean([r['estimated'] for r in rows]):>10.3f}{np.mean([r['realised'] for r in rows]):>10.3f}"
              f"  {when} ({real}); labelled test: not before {LABEL_DELAY_MINUTES} min")
    reference = datasets.generate_features(50_000, 3)
    print(f"\ncost on one window of {args.cost_rows:,} predictions (reference 50,000 rows):")
    for name, seconds in _cost(model, reference, args.cost_rows).items():
        print(f"  {name:<26}{seconds:>8.2f} s")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
