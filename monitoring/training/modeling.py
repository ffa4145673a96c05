"""Pure model building and scoring with scikit-learn: pipelines, holdout splits, quality metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from monitoring.metric_names import ACCURACY, LOWER_IS_BETTER, RMSE
from monitoring.training.datasets import TabularDataset

# What "better" means when a new version is compared with the champion on the same holdout.
PRIMARY_METRIC = {"classification": ACCURACY, "regression": RMSE}


def build_pipeline(dataset: TabularDataset) -> Pipeline:
    preprocess = ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")),
                              ("scale", StandardScaler())]), dataset.numeric),
        ("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                  ("encode", OneHotEncoder(handle_unknown="ignore"))]),
         dataset.categorical),
    ])
    estimator = LogisticRegression(max_iter=1000) if dataset.task == "classification" else Ridge()
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def split(dataset: TabularDataset, seed: int, holdout_share: float = 0.25):
    """Train and holdout frames (stratified for classification)."""
    stratify = dataset.y() if dataset.task == "classification" else None
    return train_test_split(dataset.frame, test_size=holdout_share, random_state=seed, stratify=stratify)


def quality_metrics(task: str, y_true, y_pred, score=None, positive: str | None = None) -> dict[str, float]:
    """Quality of predictions against true labels; ``score`` is the probability of the class
    ``positive`` (default: the last label in sorted order)."""
    from sklearn import metrics

    if task == "regression":
        y_true = np.asarray(y_true, dtype=float)
        y_pred = np.asarray(y_pred, dtype=float)
        return {"mae": float(metrics.mean_absolute_error(y_true, y_pred)),
                "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred)))}
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    labels = np.unique(np.concatenate([y_true, y_pred]))
    binary = len(labels) <= 2
    positive = (positive if positive in set(labels.tolist()) else labels[-1]) if binary else None
    average = "binary" if binary and len(labels) == 2 else "macro"
    kwargs = {"pos_label": positive} if average == "binary" else {}
    result = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "precision": float(metrics.precision_score(y_true, y_pred, average=average, zero_division=0, **kwargs)),
        "recall": float(metrics.recall_score(y_true, y_pred, average=average, zero_division=0, **kwargs)),
        "f1": float(metrics.f1_score(y_true, y_pred, average=average, zero_division=0, **kwargs)),
    }
    classes = np.unique(y_true)
    if score is not None and len(classes) == 2:
        scored = positive if positive in set(classes.tolist()) else classes[-1]
        result["roc_auc"] = float(metrics.roc_auc_score(y_true == scored, np.asarray(score, dtype=float)))
    return result


def evaluate(model, task: str, holdout: pd.DataFrame, features: list[str], target: str) -> dict[str, float]:
    X = holdout[features]
    predictions = model.predict(X)
    score = positive_score(model, X) if task == "classification" else None
    return quality_metrics(task, holdout[target], predictions, score)


def positive_score(model, X: pd.DataFrame) -> np.ndarray | None:
    """Probability of the last class (the positive one for binary labels), where the model has one."""
    if not hasattr(model, "predict_proba"):
        return None
    return model.predict_proba(X)[:, -1]


def is_better(metric: str, candidate: float, incumbent: float | None) -> bool:
    if incumbent is None:
        return True
    return candidate < incumbent if metric in LOWER_IS_BETTER else candidate > incumbent
