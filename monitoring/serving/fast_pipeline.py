"""A fast path for the pipelines Vigil trains: the fitted scikit-learn objects folded into one
linear scorer that reads JSON rows directly.

Scoring one row through a ``ColumnTransformer`` costs milliseconds (a pandas frame, column
selection, validation in every step); the same arithmetic on plain numbers costs microseconds.
Only a known shape is compiled: a ``ColumnTransformer`` of numeric blocks (``SimpleImputer``,
``StandardScaler``) and categorical blocks (``SimpleImputer``, ``OneHotEncoder`` ignoring unknown
categories) feeding a binary ``LogisticRegression`` or a linear regressor. Anything else gets
``None`` and is scored by scikit-learn itself. ``agrees`` checks a compiled scorer against the
pipeline it came from before it is trusted.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from monitoring.serving.input_schema import InputError

_OVERFLOW = "the feature values are too large for the model's arithmetic (the score is not a finite number)"
_BINARY_CLASSIFIERS = ("LogisticRegression",)
_REGRESSORS = ("LinearRegression", "Ridge", "Lasso", "ElasticNet")


@dataclass(frozen=True)
class LinearScorer:
    """``z = sum(a_j * x_j) + sum(w_f[category_f]) + b``; a sigmoid on top for a classifier."""

    numeric: tuple[str, ...]
    numeric_fill: np.ndarray  # the imputer's value for a missing number
    numeric_weight: np.ndarray
    categorical: tuple[tuple[str, dict[Any, float], float], ...]  # name, category weights, missing
    intercept: float
    classes: tuple[Any, ...] | None  # (negative, positive) for a classifier; None for a regressor

    def score(self, rows: list[dict[str, Any]]) -> tuple[list[Any], list[float]]:
        """Predictions and scores (positive-class probability, or the regression output)."""
        if len(rows) == 1:
            return self._score_one(rows[0])
        with np.errstate(over="ignore", invalid="ignore"):  # checked below: a finite score or an error
            z = self._decision(rows)
            if not np.isfinite(z).all():
                raise InputError(_OVERFLOW)
            if self.classes is None:
                values = z.tolist()
                return values, values
            probability = (1.0 / (1.0 + np.exp(-z))).tolist()
        negative, positive = self.classes
        return [positive if value > 0 else negative for value in z.tolist()], probability

    def _decision(self, rows: list[dict[str, Any]]) -> np.ndarray:
        z = np.full(len(rows), self.intercept)
        if self.numeric:
            numeric = np.array([[row[name] for name in self.numeric] for row in rows], dtype=float)
            z += np.where(np.isnan(numeric), self.numeric_fill, numeric) @ self.numeric_weight
        for name, weights, missing in self.categorical:
            z += np.fromiter((weights.get(row[name], 0.0) if row[name] is not None else missing
                              for row in rows), dtype=float, count=len(rows))
        return z

    def _score_one(self, row: dict[str, Any]) -> tuple[list[Any], list[float]]:
        z = self.intercept
        for name, fill, weight in zip(self.numeric, self._fill_list, self._weight_list, strict=False):
            value = row[name]
            z += weight * (fill if value is None or math.isnan(value) else value)
        for name, weights, missing in self.categorical:
            value = row[name]
            z += missing if value is None else weights.get(value, 0.0)
        if not math.isfinite(z):
            raise InputError(_OVERFLOW)
        if self.classes is None:
            return [z], [z]
        negative, positive = self.classes
        probability = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0  # exp() overflows past 709
        return [positive if z > 0 else negative], [probability]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fill_list", self.numeric_fill.tolist())
        object.__setattr__(self, "_weight_list", self.numeric_weight.tolist())


def compile_pipeline(model: Any) -> LinearScorer | None:
    """The linear scorer equivalent to ``model``, or None when its shape is not one we fold."""
    try:
        return _compile(model)
    except _Unsupported:
        return None


class _Unsupported(Exception):
    pass


def _require(condition: bool) -> None:
    if not condition:
        raise _Unsupported


def _compile(model: Any) -> LinearScorer:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    _require(isinstance(model, Pipeline) and len(model.steps) == 2)
    preprocess, estimator = model.steps[0][1], model.steps[1][1]
    _require(isinstance(preprocess, ColumnTransformer))
    name = type(estimator).__name__
    if name in _BINARY_CLASSIFIERS:
        _require(len(getattr(estimator, "classes_", ())) == 2)
        classes = tuple(estimator.classes_.tolist())
    else:
        _require(name in _REGRESSORS)
        classes = None
    coef = np.asarray(estimator.coef_, dtype=float)
    _require(coef.ndim == 1 or coef.shape[0] == 1)
    coef = coef.ravel()
    intercept = float(np.ravel(estimator.intercept_)[0]) if np.ndim(estimator.intercept_) else float(estimator.intercept_)

    numeric: list[str] = []
    fills: list[float] = []
    weights: list[float] = []
    categorical: list[tuple[str, dict[Any, float], float]] = []
    for block, transformer, columns in preprocess.transformers_:
        if transformer == "drop" or len(columns) == 0:
            continue
        _require(all(isinstance(c, str) for c in columns))
        block_coef = coef[preprocess.output_indices_[block]]
        steps = [transformer] if transformer == "passthrough" or not isinstance(transformer, Pipeline) \
            else [step for _, step in transformer.steps]
        if type(steps[-1]).__name__ == "OneHotEncoder":
            categorical.extend(_categorical_block(columns, steps, block_coef))
        else:
            for column, fill, weight, offset in _numeric_block(columns, steps, block_coef):
                numeric.append(column)
                fills.append(fill)
                weights.append(weight)
                intercept += offset
    _require(numeric or categorical)
    return LinearScorer(tuple(numeric), np.array(fills, dtype=float), np.array(weights, dtype=float),
                        tuple(categorical), intercept, classes)


def _numeric_block(columns: list[str], steps: list[Any], coef: np.ndarray):
    """Per column: (name, fill for a missing value, weight on the raw value, intercept offset)."""
    n = len(columns)
    _require(len(coef) == n)
    fill = np.full(n, np.nan)
    shift, scale = np.zeros(n), np.ones(n)  # the block computes (x - shift) / scale
    for position, step in enumerate(steps):
        kind = type(step).__name__ if step != "passthrough" else "passthrough"
        if kind == "SimpleImputer":
            _require(position == 0 and not step.add_indicator and _missing_is_nan(step.missing_values))
            fill = np.asarray(step.statistics_, dtype=float)
        elif kind == "StandardScaler":
            mean = np.asarray(step.mean_, dtype=float) if step.with_mean else np.zeros(n)
            std = np.asarray(step.scale_, dtype=float) if step.with_std else np.ones(n)
            shift, scale = shift + mean * scale, scale * std
        else:
            _require(kind == "passthrough")
    weight = coef / scale
    for column, f, w, s in zip(columns, fill.tolist(), weight.tolist(), shift.tolist(), strict=False):
        yield column, f, w, -w * s


def _categorical_block(columns: list[str], steps: list[Any], coef: np.ndarray):
    *before, encoder = steps
    _require(encoder.handle_unknown == "ignore" and encoder.drop is None
             and encoder.min_frequency is None and encoder.max_categories is None)
    fills: list[Any] = [None] * len(columns)
    for step in before:
        _require(type(step).__name__ == "SimpleImputer" and not step.add_indicator
                 and _missing_is_nan(step.missing_values) and len(before) == 1)
        fills = list(step.statistics_)
    offset = 0
    for column, categories, fill in zip(columns, encoder.categories_, fills, strict=False):
        block = {category: float(w) for category, w in zip(categories.tolist(), coef[offset:offset + len(categories)], strict=False)}
        offset += len(categories)
        yield column, block, block.get(fill, 0.0)
    _require(offset == len(coef))


def _missing_is_nan(missing_values: Any) -> bool:
    return isinstance(missing_values, float) and math.isnan(missing_values)


def agrees(scorer: LinearScorer, model: Any, rows: list[dict[str, Any]], columns: list[str]) -> bool:
    """Whether the scorer gives ``model``'s predictions and scores on ``rows``."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unseen categories are part of the check
        expected = model.predict(frame)
        expected_scores = model.predict_proba(frame)[:, -1] if scorer.classes is not None else expected
    labels, scores = scorer.score(rows)
    if scorer.classes is not None and expected.tolist() != labels:
        return False
    one_by_one = [scorer.score([row])[1][0] for row in rows]
    return bool(np.allclose(scores, expected_scores, rtol=1e-7, atol=1e-9)
                and np.allclose(one_by_one, expected_scores, rtol=1e-7, atol=1e-9))


def sample_rows(scorer: LinearScorer, n: int = 64, seed: int = 0) -> list[dict[str, Any]]:
    """Rows spread over the scorer's inputs (and unseen categories), to check it against the model."""
    rng = np.random.default_rng(seed)
    spread = np.where(scorer.numeric_weight != 0, 1.0 / np.maximum(np.abs(scorer.numeric_weight), 1e-12), 1.0)
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {}
        for name, fill, width in zip(scorer.numeric, scorer.numeric_fill.tolist(), spread.tolist(), strict=False):
            center = 0.0 if math.isnan(fill) else fill
            row[name] = float(center + rng.normal() * min(width, 1e6) * 0.5)
        for name, weights, _missing in scorer.categorical:
            options = [*weights, "__unseen__"]
            row[name] = options[int(rng.integers(len(options)))]
        rows.append(row)
    return rows
