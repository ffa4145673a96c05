"""Models as a team registers them with its own code, not with ``vigil train``.

A plain scikit-learn pipeline (one-hot categories, a random forest) fitted on the demo loan data,
logged with ``mlflow.sklearn.log_model`` and a signature, registered, and put on an alias with
``MlflowClient`` directly. ``bad=True`` fits it on corrupted labels (the credit score's effect
reversed): its offline score looks fine, on real traffic it is clearly worse. ``flavor="pyfunc"``
logs the same pipeline as a team's own ``mlflow.pyfunc.PythonModel`` answering ``prediction`` and
``probability`` columns (the documented output convention), so Vigil can only call ``pyfunc.predict``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from monitoring.training import datasets

PIP_REQUIREMENTS = ["scikit-learn", "pandas<3", "numpy", "cloudpickle"]


def fit_team_model(*, bad: bool = False, rows: int = 3000, seed: int = 0):
    """A fitted pipeline and its training frame (features and target)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    data = datasets.bad_training_set(rows, seed) if bad else datasets.generate(rows, seed)
    preprocess = ColumnTransformer([
        ("categories", OneHotEncoder(handle_unknown="ignore"), data.categorical),
    ], remainder="passthrough")
    model = Pipeline([("preprocess", preprocess),
                      ("forest", RandomForestClassifier(n_estimators=40, max_depth=8, random_state=seed))])
    model.fit(data.X(), data.y())
    return model, data.frame


def register_team_version(tracking_uri: str, name: str, *, bad: bool = False, seed: int = 0,
                          dataset_file: Path | None = None, log_accuracy: bool = True,
                          champion: bool = True, flavor: str = "sklearn") -> int:
    """Fit, log (optionally with ``mlflow.log_input`` of ``dataset_file``), register, and put on
    @champion; returns the version. ``flavor``: "sklearn" or "pyfunc" (a custom ``PythonModel``)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from mlflow.models import infer_signature

    model, frame = fit_team_model(bad=bad, seed=seed)
    features = frame.drop(columns=[datasets.TARGET])
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    with mlflow.start_run(experiment_id=_experiment(tracking_uri, f"team-{name}")):
        if dataset_file is not None:
            frame.to_parquet(dataset_file, index=False)
            mlflow.log_input(mlflow.data.from_pandas(frame, source=str(dataset_file), name="loans",
                                                     targets=datasets.TARGET), context="training")
        if log_accuracy:
            holdout = datasets.generate(1000, seed + 50)
            mlflow.log_metric("accuracy", float((model.predict(holdout.X()) == holdout.y()).mean()))
        if flavor == "pyfunc":
            wrapped = _pyfunc_class(mlflow)(model)
            info = mlflow.pyfunc.log_model(
                name="model", python_model=wrapped, input_example=features.head(3),
                signature=infer_signature(features.head(50), wrapped.predict(None, features.head(50))),
                pip_requirements=PIP_REQUIREMENTS, registered_model_name=name)
        else:
            info = mlflow.sklearn.log_model(
                model, name="model", signature=infer_signature(features.head(50), model.predict(features.head(50))),
                input_example=features.head(3), pip_requirements=PIP_REQUIREMENTS,
                serialization_format="cloudpickle", registered_model_name=name)
    version = int(info.registered_model_version)
    if champion:
        mlflow.MlflowClient(tracking_uri=tracking_uri).set_registered_model_alias(name, "champion", str(version))
    return version


def _pyfunc_class(mlflow):
    """Defined inside a function, so cloudpickle stores the class by value: the API loads it
    without this test module on its path, as it would load a team's own code."""
    class TeamPyfunc(mlflow.pyfunc.PythonModel):
        """A team's own pyfunc around its fitted pipeline: prediction and probability columns."""

        def __init__(self, model):
            self.model = model

        def predict(self, context, model_input, params=None):
            probability = self.model.predict_proba(model_input)[:, 1]
            positive, negative = self.model.classes_[1], self.model.classes_[0]
            return pd.DataFrame({"prediction": [positive if p > 0.5 else negative for p in probability],
                                 "probability": probability})

    return TeamPyfunc


def _experiment(tracking_uri: str, experiment: str) -> str:
    """The team's experiment, its artifacts next to the MLflow database (never the working folder)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    root = Path(tracking_uri[len("sqlite:///"):]).parent / "team-artifacts"
    return client.create_experiment(experiment, artifact_location=root.as_uri())


def feature_frame(rows: int, seed: int) -> pd.DataFrame:
    return datasets.generate_features(rows, seed)
