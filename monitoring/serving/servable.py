"""The one way Vigil loads a registered model to score with it: ``load_servable``.

The API's champion, the watchdog's check of a rollback target, the dashboard's preview, batch
scoring and training's comparison with the champion all go through it (the Gradio page asks the
API). Any version with a pyfunc flavor and a column signature loads; a scikit-learn, XGBoost or
LightGBM flavor is scored by the library's own model (``predict`` and ``predict_proba``, which
is what ``mlflow.pyfunc`` would call for ``predict``), any other flavor by ``pyfunc.predict``
read with the output convention of ``monitoring.serving.model_output``. A version whose input
example is logged must score it before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from monitoring.registry.mlflow_registry import LoadedVersion, Registry, RegistryError
from monitoring.serving import model_output
from monitoring.serving.input_schema import InputSchema
from monitoring.serving.model_output import CLASSIFICATION, Scored

_DTYPES = {"double": np.float64, "float": np.float32, "long": np.int64, "integer": np.int32,
           "boolean": np.bool_, "string": object}


@dataclass(frozen=True)
class ServableModel:
    """A loaded version and how to read its answers; never changed after loading."""

    loaded: LoadedVersion
    schema: InputSchema
    task: str  # classification | regression
    positive_class: Any | None  # the class whose probability is answered (classifiers)

    @property
    def model_name(self) -> str:
        return self.loaded.info.model_name

    @property
    def version(self) -> int:
        return self.loaded.info.version

    @property
    def is_classifier(self) -> bool:
        return self.task == CLASSIFICATION

    @property
    def native(self) -> Any | None:
        return self.loaded.native

    def frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """Checked JSON rows as a DataFrame with the signature's column order and types."""
        columns = {}
        for feature in self.schema.features:
            values = [row.get(feature.name) for row in rows]
            dtype = _DTYPES[feature.signature_type]
            if None in values and dtype is not object:  # an optional feature left out: NaN
                dtype = np.float64 if dtype is not np.bool_ else object
            columns[feature.name] = np.array(values, dtype=dtype)
        return pd.DataFrame(columns)

    def score_rows(self, rows: list[dict[str, Any]]) -> Scored:
        return self._score(self.frame(rows))

    def score_frame(self, frame: pd.DataFrame) -> Scored:
        """Score any frame holding the model's features (extra columns are ignored)."""
        return self._score(self._typed(frame))

    def predict(self, frame: pd.DataFrame) -> list[Any]:
        """The predicted labels (or regression outputs) of a frame's rows."""
        return self.score_frame(frame).labels

    def _typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [n for n in self.schema.names if n not in frame.columns]
        if missing:
            raise KeyError(f"the rows lack the features {self.model_name} v{self.version} needs: {missing}")
        typed = frame[self.schema.names].copy()
        for feature in self.schema.features:
            dtype = _DTYPES[feature.signature_type]
            if dtype is not object and not typed[feature.name].isna().any():
                typed[feature.name] = typed[feature.name].astype(dtype)
        return typed

    def _score(self, frame: pd.DataFrame) -> Scored:
        native = self.loaded.native
        if native is not None:
            labels = np.asarray(native.predict(frame)).tolist()
            if len(labels) != len(frame):
                raise model_output.ModelOutputError(
                    f"the model returned {len(labels)} predictions for {len(frame)} rows")
            if not self.is_classifier:
                return Scored(labels, [float(v) for v in labels])
            if not hasattr(native, "predict_proba"):
                return Scored(labels, [None] * len(labels))
            column = list(native.classes_).index(self.positive_class)
            return Scored(labels, native.predict_proba(frame)[:, column].astype(float).tolist())
        output = self.loaded.pyfunc.predict(frame)
        labels, probabilities = model_output.read_output(output, len(frame), self.positive_class)
        if not self.is_classifier:
            return Scored(labels, [float(v) for v in labels])
        return Scored(labels, probabilities if probabilities is not None else [None] * len(labels))


def load_servable(registry: Registry, model_name: str, version: int) -> ServableModel:
    """Load a version, decide its task and positive class, and check it on its input example."""
    loaded = registry.load_version(model_name, version)
    where = f"{model_name} version {version}"
    try:
        schema = InputSchema.from_signature(loaded.input_columns)
    except ValueError as error:
        raise RegistryError(f"{where}: {error}") from error
    example = loaded.input_example
    sample_output = None
    if example is not None and loaded.native is None and not loaded.output_columns:
        sample_output = _try(where, lambda: loaded.pyfunc.predict(example))
    try:
        task = model_output.decide_task(loaded.tags, loaded.native, loaded.output_columns, sample_output)
        classes = np.asarray(loaded.native.classes_).tolist() if hasattr(loaded.native, "classes_") else None
        positive = model_output.positive_class(loaded.tags, classes) if task == CLASSIFICATION else None
    except ValueError as error:
        raise RegistryError(f"{where}: {error}") from error
    servable = ServableModel(loaded, schema, task, positive)
    if example is not None:
        _try(where, lambda: servable.score_frame(example))
    return servable


def _try(where: str, call: Any) -> Any:
    try:
        return call()
    except Exception as error:  # any failure on its own example refuses the version
        raise RegistryError(f"{where} fails on its own input example "
                            f"({type(error).__name__}: {error})") from error
