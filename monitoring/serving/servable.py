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

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from monitoring.registry.mlflow_registry import LoadedVersion, Registry, RegistryError
from monitoring.serving import model_output
from monitoring.serving.input_schema import InputSchema
from monitoring.serving.model_output import CLASSIFICATION, Scored

_DTYPES = {"double": np.float64, "float": np.float32, "long": np.int64, "integer": np.int32,
           "boolean": np.bool_, "string": object}
# Classifiers whose predict() is the class of highest predict_proba(): their labels are read from
# the probabilities (one model call, not two), once the input example agrees.
_ARGMAX_CLASSIFIERS = frozenset({
    "HistGradientBoostingClassifier", "GradientBoostingClassifier", "RandomForestClassifier",
    "ExtraTreesClassifier", "DecisionTreeClassifier", "LogisticRegression", "LGBMClassifier",
    "XGBClassifier",
})


@dataclass(frozen=True)
class ServableModel:
    """A loaded version and how to read its answers; never changed after loading."""

    loaded: LoadedVersion
    schema: InputSchema
    task: str  # classification | regression
    positive_class: Any | None  # the class whose probability is answered (classifiers)
    labels_from_proba: bool = False  # predict() is argmax(predict_proba()): one call answers both

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
        dtype = self._one_dtype
        if dtype is not None and self.schema.all_required:  # one block: the cheapest frame to build
            names = self.schema.names
            return pd.DataFrame(np.array([[row[n] for n in names] for row in rows], dtype=dtype),
                                columns=names)
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
        if self.labels_from_proba:
            proba = native.predict_proba(frame)
            return Scored(np.asarray(native.classes_)[proba.argmax(axis=1)].tolist(),
                          self._positive_proba(proba))
        if native is not None:
            labels = np.asarray(native.predict(frame)).tolist()
            if len(labels) != len(frame):
                raise model_output.ModelOutputError(
                    f"the model returned {len(labels)} predictions for {len(frame)} rows")
            if not self.is_classifier:
                return Scored(labels, [float(v) for v in labels])
            if not hasattr(native, "predict_proba"):
                return Scored(labels, [None] * len(labels))
            return Scored(labels, self._positive_proba(native.predict_proba(frame)))
        output = self.loaded.pyfunc.predict(frame)
        labels, probabilities = model_output.read_output(output, len(frame), self.positive_class)
        if not self.is_classifier:
            return Scored(labels, [float(v) for v in labels])
        return Scored(labels, probabilities if probabilities is not None else [None] * len(labels))


    def _positive_proba(self, proba: np.ndarray) -> list[float]:
        return proba[:, list(self.loaded.native.classes_).index(self.positive_class)].astype(float).tolist()

    @cached_property
    def _one_dtype(self) -> Any | None:
        dtypes = {_DTYPES[f.signature_type] for f in self.schema.features}
        return dtypes.pop() if len(dtypes) == 1 and np.float64 in dtypes else None


def _argmax_classifier(servable: ServableModel, example: pd.DataFrame | None) -> bool:
    """Whether the model's labels may be read from its probabilities (see ``_ARGMAX_CLASSIFIERS``)."""
    native = servable.native
    final = native.steps[-1][1] if hasattr(native, "steps") else native  # a Pipeline: its estimator
    if not servable.is_classifier or type(final).__name__ not in _ARGMAX_CLASSIFIERS:
        return False
    if example is None:
        return True
    fast = replace(servable, labels_from_proba=True).score_frame(example).labels
    return fast == servable.score_frame(example).labels


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
    if loaded.native is not None and _argmax_classifier(servable, example):
        servable = replace(servable, labels_from_proba=True)
    return servable


def _try(where: str, call: Any) -> Any:
    try:
        return call()
    except Exception as error:  # any failure on its own example refuses the version
        raise RegistryError(f"{where} fails on its own input example "
                            f"({type(error).__name__}: {error})") from error
