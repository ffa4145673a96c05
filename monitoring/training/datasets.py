"""Training and traffic data: a seeded loan-default generator for the demo, or the user's own CSV.

The generator has a known ground-truth rule with noise, so every scenario's effect is known:
``healthy`` (the training distribution), ``covariate_drift`` (applicants change, the rule does
not), ``concept_drift`` (the rule changes, applicants do not). ``bad_training_set`` yields data
whose labels carry no signal, for a deliberately bad model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "default"
NUMERIC = [
    "age", "income", "loan_amount", "loan_term_months", "credit_score", "debt_to_income",
    "years_employed", "open_accounts", "late_payments", "savings",
]
CATEGORICAL = ["home_ownership", "purpose", "employment", "region"]
SCENARIOS = ("healthy", "covariate_drift", "concept_drift")

_CATEGORIES = {
    "home_ownership": (["rent", "own", "mortgage"], [0.45, 0.2, 0.35]),
    "purpose": (["car", "home", "education", "business", "debt_consolidation"], [0.25, 0.2, 0.15, 0.1, 0.3]),
    "employment": (["salaried", "self_employed", "unemployed", "retired"], [0.65, 0.2, 0.07, 0.08]),
    "region": (["north", "south", "east", "west"], [0.25, 0.25, 0.25, 0.25]),
}


# Under covariate drift most applicants' features move: more than half of them, so the data set
# as a whole counts as drifted by Evidently's default rule.
_SHIFTED_WEIGHTS = {
    "purpose": [0.1, 0.1, 0.1, 0.2, 0.5],
    "employment": [0.5, 0.25, 0.17, 0.08],
    "home_ownership": [0.65, 0.1, 0.25],
}


class DataError(ValueError):
    """The data cannot be used: the message says what is wrong and where."""


@dataclass(frozen=True)
class TabularDataset:
    frame: pd.DataFrame  # features and target
    target: str
    numeric: list[str]
    categorical: list[str]

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def task(self) -> str:
        return infer_task(self.frame[self.target])

    def X(self) -> pd.DataFrame:
        return self.frame[self.features]

    def y(self) -> pd.Series:
        return self.frame[self.target]


def infer_task(target: pd.Series) -> str:
    """``classification`` for labels, ``regression`` for a continuous number."""
    if pd.api.types.is_float_dtype(target) and target.nunique(dropna=True) > 20:
        return "regression"
    return "classification"


def generate_features(n: int, seed: int, scenario: str = "healthy") -> pd.DataFrame:
    """``n`` loan applications (features only)."""
    if scenario not in SCENARIOS:
        raise DataError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if n <= 0:
        raise DataError(f"row count must be positive, not {n}")
    rng = np.random.default_rng(seed)
    shifted = scenario == "covariate_drift"
    age = rng.normal(38 if not shifted else 29, 11, n).clip(18, 85)
    income = rng.lognormal(10.9 if not shifted else 10.5, 0.45, n)
    frame = pd.DataFrame({
        "age": age.round(0),
        "income": income.round(0),
        "loan_amount": (income * rng.uniform(0.1, 0.9 if not shifted else 1.4, n)).round(0),
        "loan_term_months": rng.choice([12, 24, 36, 48, 60], n).astype(float),
        "credit_score": rng.normal(680 if not shifted else 625, 60, n).clip(300, 850).round(0),
        "debt_to_income": rng.beta(2 if not shifted else 3, 5, n).round(3),
        "years_employed": rng.exponential(6 if not shifted else 3, n).clip(0, 45).round(1),
        "open_accounts": rng.poisson(4, n).astype(float),
        "late_payments": rng.poisson(0.6 if not shifted else 1.4, n).astype(float),
        "savings": rng.lognormal(8.5 if not shifted else 7.8, 1.0, n).round(0),
    })
    for column, (values, weights) in _CATEGORIES.items():
        frame[column] = rng.choice(values, n, p=_SHIFTED_WEIGHTS.get(column, weights) if shifted else weights)
    return frame


def true_default_probability(features: pd.DataFrame, scenario: str = "healthy") -> np.ndarray:
    """The ground-truth rule: the probability that an application defaults."""
    f = features
    logit = 2.5 * (
        -0.4
        - 0.012 * (f["credit_score"] - 680)
        + 3.2 * (f["debt_to_income"] - 0.29)
        + 0.9 * (f["loan_amount"] / f["income"] - 0.5)
        + 0.55 * f["late_payments"]
        - 0.05 * f["years_employed"]
        + 0.9 * (f["employment"] == "unemployed")
        + 0.4 * (f["purpose"] == "business")
        - 0.3 * (f["home_ownership"] == "own")
    )
    if scenario == "concept_drift":
        # lenders' rule changed: credit score barely matters, savings and age now do
        logit = 2.5 * (
            -0.4
            - 0.002 * (f["credit_score"] - 680)
            - 0.6 * (np.log(f["savings"]) - 8.5)
            + 0.05 * (f["age"] - 38)
            + 3.2 * (f["debt_to_income"] - 0.29)
        )
    return 1.0 / (1.0 + np.exp(-logit.to_numpy(dtype=float)))


def generate(n: int, seed: int, scenario: str = "healthy") -> TabularDataset:
    """``n`` applications with their true outcome (0/1) drawn from the ground-truth rule."""
    features = generate_features(n, seed, scenario)
    rng = np.random.default_rng(seed + 1_000_003)
    outcome = (rng.random(n) < true_default_probability(features, scenario)).astype(int)
    frame = features.assign(**{TARGET: outcome})
    return TabularDataset(frame, TARGET, list(NUMERIC), list(CATEGORICAL))


def bad_training_set(n: int, seed: int) -> TabularDataset:
    """Healthy applications labelled by a corrupted rule (a join gone wrong upstream: the credit
    score's effect reversed), so the model learns the wrong thing, confidently."""
    features = generate_features(n, seed)
    corrupted = features.assign(credit_score=2 * 680 - features["credit_score"])
    rng = np.random.default_rng(seed + 7)
    outcome = (rng.random(n) < true_default_probability(corrupted)).astype(int)
    return TabularDataset(features.assign(**{TARGET: outcome}), TARGET, list(NUMERIC), list(CATEGORICAL))


def load_csv(path: str | Path, target: str) -> TabularDataset:
    """The user's own data: a CSV file with a header row and a target column."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such CSV file: {path}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not a readable CSV file: {error}") from error
    return from_frame(frame, target, origin=str(path))


def from_frame(frame: pd.DataFrame, target: str, origin: str = "data") -> TabularDataset:
    """Check a frame and split its columns into numeric and categorical features."""
    if frame.empty:
        raise DataError(f"{origin} has no rows")
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise DataError(f"{origin} has no target column {target!r} (columns: {columns})")
    labelled = frame[frame[target].notna()]
    if len(labelled) < 20:
        raise DataError(f"{origin} has only {len(labelled)} rows with a {target!r} value; need at least 20")
    if infer_task(labelled[target]) == "classification" and labelled[target].nunique() < 2:
        raise DataError(f"target {target!r} in {origin} has a single value; nothing to learn")
    features = [c for c in labelled.columns if c != target]
    if not features:
        raise DataError(f"{origin} has no feature columns besides {target!r}")
    numeric, categorical, empty = [], [], []
    for column in features:
        values = labelled[column]
        if values.isna().all():
            empty.append(column)
        elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            numeric.append(column)
        elif values.nunique() > max(50, 0.5 * len(values)):
            raise DataError(
                f"column {column!r} in {origin} is text with {values.nunique()} distinct values in "
                f"{len(values)} rows: neither a number nor a category (an id or garbage?)"
            )
        else:
            categorical.append(column)
    if empty:
        raise DataError(f"columns with no values at all in {origin}: {', '.join(empty)}")
    clean = labelled.copy()
    for column in categorical:
        clean[column] = clean[column].astype(str)
    return TabularDataset(clean.reset_index(drop=True), target, numeric, categorical)
