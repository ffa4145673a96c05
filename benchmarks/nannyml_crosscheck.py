"""Cross-check: Vigil's CBPE (``monitoring.metrics.estimated_performance``) against NannyML's on the same data.

NannyML cannot join Vigil's pinned stack (it requires ``lightgbm<4.6``), so this runs in a
virtual environment of its own:

    python3 -m venv /tmp/nannyml && /tmp/nannyml/bin/pip install nannyml==0.13.1 statsmodels
    /tmp/nannyml/bin/python benchmarks/nannyml_crosscheck.py

Reference: 20,000 rows whose outcomes are drawn with the probability the model states (calibrated
by construction); three analysis windows of 5,000 (healthy, and two covariate shifts). Both
estimators fit on the reference and estimate each window; the script prints both and the largest
difference per metric.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring.metrics import estimated_performance as cbpe  # noqa: E402

METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def _window(n: int, a: float, b: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, n)
    return pd.DataFrame({"p": p, "y_pred": (p > 0.5).astype(int), "y": (rng.random(n) < p).astype(int)})


def main() -> None:
    import nannyml

    reference = _window(20_000, 2, 2, 1)
    windows = [_window(5000, a, b, 10 + i) for i, (a, b) in enumerate([(2, 2), (4, 2), (1, 3)])]
    theirs = nannyml.CBPE(y_pred_proba="p", y_pred="y_pred", y_true="y", problem_type="classification_binary",
                          metrics=METRICS, chunk_size=5000).fit(reference)
    estimated = theirs.estimate(pd.concat(windows, ignore_index=True).drop(columns=["y"])) \
        .filter(period="analysis").to_df()
    calibration = cbpe.calibrate(reference["p"], reference["y"])
    print(f"NannyML {nannyml.__version__}; Vigil's calibration check: {calibration.reason}")
    for metric in METRICS:
        nannyml_values = estimated[(metric, "value")].to_numpy()
        vigil_values = np.array([cbpe.estimate(calibration.transform(w["p"].to_numpy()), w["y_pred"] == 1)
                                 [f"estimated_{metric}"] for w in windows])
        print(f"{metric:<10} NannyML {np.round(nannyml_values, 4)}  Vigil {np.round(vigil_values, 4)}  "
              f"largest difference {np.max(np.abs(nannyml_values - vigil_values)):.4f}")


if __name__ == "__main__":
    main()
