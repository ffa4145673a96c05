"""Real models of several kinds, logged and registered by test code (never by ``vigil train``), the
way a team registers its own: scikit-learn (skops and cloudpickle), LightGBM, a custom
``PythonModel``, a models-from-code pyfunc, a regressor, and broken ones (no signature, raises,
wrong number of rows, slow).

``register(settings, kind)`` logs one version into the settings' MLflow store, puts it on
``@champion`` and returns what a test needs to check the API's answers: ``expected(frame)``
gives the labels and the probabilities (regression: the outputs) computed by the fitted model
itself (``predict_proba``) or by the pyfunc's own formula. ``truth(kind, frame)`` is the true
outcome a good version of ``kind`` was built to predict (the labels a test sends as feedback).

``register(..., bad=True)`` registers a clearly worse version of the same kind, one that looks
like a normal version to MLflow: the fitted kinds are fitted on flipped labels, the pyfuncs
answer the reversed formula, the regressor is fitted on a target with a wrong offset.
"""

from __future__ import annotations

import math
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

FEATURES = ["x1", "x2", "x3", "n"]  # three doubles and a long
GOOD_KINDS = ["hgb-skops", "rf-cloudpickle", "lightgbm", "python-model", "from-code", "regressor"]
REQUIREMENTS = ["scikit-learn", "pandas", "numpy"]


def features(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)) * [1.0, 2.0, 0.5], columns=FEATURES[:3])
    return frame.assign(n=rng.integers(0, 10, rows).astype(np.int64))


def request_rows(rows: int, seed: int = 7) -> list[dict[str, Any]]:
    return features(rows, seed).to_dict("records")


def _target(frame: pd.DataFrame) -> np.ndarray:
    return (frame.x1 + 0.5 * frame.x2 - 0.2 * frame.n + 0.8 > 0).astype(int).to_numpy()


def _regression_target(frame: pd.DataFrame) -> pd.Series:
    return frame.x1 * 3 - frame.x2 + 0.5 * frame.n


BAD_OFFSET = 6.0  # the bad regressor's error: its target shifted (a units or a join bug)


def truth(kind: str, frame: pd.DataFrame) -> list[Any]:
    """The true outcome of each row, as the good version of ``kind`` was built to predict it."""
    if kind == "regressor":
        return _regression_target(frame).tolist()
    if kind in ("python-model", "from-code"):
        yes = logistic(frame) > 0.5
        return np.where(yes, "yes", "no").tolist() if kind == "from-code" else yes.astype(int).tolist()
    y = _target(frame)
    return np.where(y == 1, "rejected", "approved").tolist() if kind == "lightgbm" else y.tolist()


def logistic(frame: pd.DataFrame, sign: float = 1.0) -> np.ndarray:
    """The probability the pyfunc models answer: a fixed formula, so tests know it exactly
    (``sign=-1``: the bad versions' reversed formula)."""
    z = 1.5 * frame["x1"].to_numpy(float) - 0.7 * frame["x2"].to_numpy(float) + 0.1 * frame["n"].to_numpy(float)
    return 1.0 / (1.0 + np.exp(-sign * z))


class LogisticPythonModel(mlflow.pyfunc.PythonModel):
    """A custom pyfunc: a DataFrame with ``prediction`` and one ``proba_<class>`` per class."""

    sign = 1.0

    def predict(self, context, model_input, params=None):
        p = logistic(model_input, self.sign)
        return pd.DataFrame({"prediction": (p > 0.5).astype(int), "proba_0": 1 - p, "proba_1": p})


class ReversedPythonModel(LogisticPythonModel):
    """The bad custom pyfunc: the formula with its sign reversed (right on almost no row)."""

    sign = -1.0


class RaisingPythonModel(mlflow.pyfunc.PythonModel):
    """Fails on any row with x1 above 50 (a feature value it was never meant to see)."""

    def predict(self, context, model_input, params=None):
        if (model_input["x1"] > 50).any():
            raise ValueError("x1 above 50 is outside this model's domain")
        return LogisticPythonModel().predict(context, model_input)


class WrongRowsPythonModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return LogisticPythonModel().predict(context, model_input).iloc[1:]


class SlowPythonModel(mlflow.pyfunc.PythonModel):
    """Two seconds per call, whatever the number of rows (a remote lookup, a big ensemble)."""

    def predict(self, context, model_input, params=None):
        time.sleep(2.0)
        return LogisticPythonModel().predict(context, model_input)


class UnsignedPythonModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return LogisticPythonModel().predict(context, model_input)


FROM_CODE = '''
    """A models-from-code pyfunc (mlflow.models.set_model): prediction and probability columns."""
    import mlflow
    import numpy as np
    import pandas as pd

    SIGN = {sign}


    class FromCode(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            z = (1.5 * model_input["x1"].to_numpy(float) - 0.7 * model_input["x2"].to_numpy(float)
                 + 0.1 * model_input["n"].to_numpy(float))
            p = 1.0 / (1.0 + np.exp(-SIGN * z))
            return pd.DataFrame({"prediction": np.where(p > 0.5, "yes", "no"), "probability": p})


    mlflow.models.set_model(FromCode())
'''


@dataclass
class Registered:
    name: str
    version: int
    kind: str
    task: str
    flavor: str
    expected: Callable[[pd.DataFrame], tuple[list[Any], list[float | None]]]


def _sklearn_expected(model: Any, positive: Any = None) -> Callable:
    def expected(frame: pd.DataFrame):
        classes = list(model.classes_)
        column = classes.index(positive) if positive is not None else len(classes) - 1
        return model.predict(frame).tolist(), model.predict_proba(frame)[:, column].tolist()
    return expected


def _pyfunc_expected(yes: Any = 1, no: Any = 0, sign: float = 1.0) -> Callable:
    def expected(frame: pd.DataFrame):
        p = logistic(frame, sign)
        return [yes if v > 0.5 else no for v in p.tolist()], p.tolist()
    return expected


def _log(kind: str, train: pd.DataFrame, tmp: Path, with_example: bool,
         bad: bool) -> tuple[Any, str, Callable, str]:
    """Log one model of ``kind`` in the active run; returns (model info, task, expected, flavor)."""
    if kind in ("hgb-skops", "rf-cloudpickle", "regressor", "lightgbm"):
        return _log_fitted(kind, train, bad)
    example, sign = train.head(3), -1.0 if bad else 1.0
    if kind == "from-code":
        code = tmp / f"from_code_model{'_bad' if bad else ''}.py"
        code.write_text(textwrap.dedent(FROM_CODE).replace("{sign}", repr(sign)))
        output = pd.DataFrame({"prediction": ["yes"], "probability": [0.5]})
        info = mlflow.pyfunc.log_model(name="model", python_model=str(code), input_example=example,
                                       signature=infer_signature(train, output), pip_requirements=REQUIREMENTS)
        return info, "classification", _pyfunc_expected("yes", "no", sign), "mlflow.pyfunc.loaders.code_model"
    classes = {"python-model": ReversedPythonModel if bad else LogisticPythonModel, "raises": RaisingPythonModel,
               "wrong-rows": WrongRowsPythonModel, "slow": SlowPythonModel,
               "no-signature": UnsignedPythonModel}
    python_model = classes[kind]()
    signature = None if kind == "no-signature" else infer_signature(train, LogisticPythonModel().predict(None, example))
    info = mlflow.pyfunc.log_model(name="model", python_model=python_model, signature=signature,
                                   input_example=example if with_example else None,
                                   pip_requirements=REQUIREMENTS)
    return info, "classification", _pyfunc_expected(sign=sign), "mlflow.pyfunc.model"


def _log_fitted(kind: str, train: pd.DataFrame, bad: bool) -> tuple[Any, str, Callable, str]:
    """A fitted model of ``kind`` (bad: fitted on flipped labels, or a target with a wrong offset)."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
    )

    y, example = _target(train), train.head(3)
    y = 1 - y if bad else y
    if kind == "regressor":
        target = _regression_target(train) + (BAD_OFFSET if bad else 0.0)
        model = HistGradientBoostingRegressor(max_iter=30).fit(train, target)
        info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(train, target),
                                        input_example=example, pip_requirements=REQUIREMENTS,
                                        serialization_format="cloudpickle")
        return info, "regression", lambda f: (model.predict(f).tolist(), model.predict(f).tolist()), "mlflow.sklearn"
    if kind == "lightgbm":
        import lightgbm

        labels = np.where(y == 1, "rejected", "approved")
        model = lightgbm.LGBMClassifier(n_estimators=30, verbose=-1).fit(train, labels)
        info = mlflow.lightgbm.log_model(model, name="model", signature=infer_signature(train, labels),
                                         input_example=example, pip_requirements=["lightgbm", *REQUIREMENTS])
        return info, "classification", _sklearn_expected(model, positive="approved"), "mlflow.lightgbm"
    if kind == "hgb-skops":
        import skops.io

        model = HistGradientBoostingClassifier(max_iter=30).fit(train, y)
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        options: dict[str, Any] = {"serialization_format": "skops", "skops_trusted_types": trusted}
    else:
        model = RandomForestClassifier(n_estimators=25, random_state=0).fit(train, y)
        options = {"serialization_format": "cloudpickle"}
    info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(train, y),
                                    input_example=example, pip_requirements=REQUIREMENTS, **options)
    return info, "classification", _sklearn_expected(model), "mlflow.sklearn"


def register(settings, kind: str, *, tmp: Path, promote: bool = True, tags: dict[str, str] | None = None,
             with_example: bool | None = None, bad: bool = False) -> Registered:
    """Log and register one version of ``kind`` under ``settings.model_name``; on @champion if
    ``promote``; ``bad``: a clearly worse one (see the module's docstring). Custom pyfuncs are
    logged without an input example unless ``with_example`` (the good one with), so that a broken
    one is only found out by a request."""
    from monitoring.registry.mlflow_registry import Registry

    registry = Registry(settings)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    with mlflow.start_run(experiment_id=registry.experiment_id()):
        info, task, expected, flavor = _log(kind, features(400, seed=0), tmp,
                                            kind == "python-model" if with_example is None else with_example,
                                            bad)
    version = mlflow.register_model(info.model_uri, settings.model_name)
    number = int(version.version)
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    own = {"vigil.positive_class": "approved"} if kind == "lightgbm" else {}
    for key, value in {**own, **(tags or {})}.items():
        client.set_model_version_tag(settings.model_name, str(number), key, value)
    if promote:
        client.set_registered_model_alias(settings.model_name, "champion", str(number))
    return Registered(settings.model_name, number, kind, task, flavor, expected)


def close(a: list[float | None], b: list[float | None], tolerance: float = 1e-9) -> bool:
    return len(a) == len(b) and all(
        (x is None and y is None) or (x is not None and y is not None and math.isclose(x, y, rel_tol=tolerance,
                                                                                      abs_tol=tolerance))
        for x, y in zip(a, b, strict=True))
