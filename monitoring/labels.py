"""How a label or a prediction is spelled, and whether a prediction agrees with its label.

One rule, used wherever Vigil compares outcomes: the feedback store and the prediction log store
this spelling, the monitoring windows score it, the watchdog counts errors with it. Pure: no I/O.

The canonical text of a value:

- missing (``None``, NaN) has none: ``None``;
- booleans are the classes 1 and 0, as in Python and scikit-learn (``True == 1``): ``True``,
  ``numpy.bool_(True)`` and the texts ``"True"`` / ``"true"`` / ``"TRUE"`` are all ``"1"``;
- integral numbers have no decimal point: ``1``, ``1.0``, ``numpy.int64(1)``, ``"1"``, ``"1.0"``
  and ``" 1 "`` are all ``"1"``;
- other numbers are their shortest round-trip form, so a regressor's ``2.50`` and ``2.5`` agree;
- any other text is kept as sent, without surrounding blanks and case-sensitive. Words such as
  ``"yes"`` / ``"no"`` are NOT read as booleans: they are the classes of a yes/no classifier, so
  ``"yes"`` stays ``"yes"``, agrees with a prediction ``"yes"`` and never with ``"1"``.

A regressor's prediction seldom equals its label to the last digit, so for a regressor the
watchdog asks another question (``misses``): is the prediction further from the label than a
tolerance (the baseline's typical error, see ``monitoring.watchdog.sequential_test``)?
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

_BOOLEAN_WORDS = {"true": "1", "false": "0"}


def label_text(value: Any) -> str | None:
    """The canonical spelling of a label or a prediction (see the module's rules)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        return _number_text(value)
    text = str(value).strip()
    if text.lower() in _BOOLEAN_WORDS:
        return _BOOLEAN_WORDS[text.lower()]
    try:
        return str(int(text))  # exact for integers beyond float precision
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return text if math.isnan(number) else _number_text(number)


def label_texts(values: Sequence[Any] | pd.Series) -> np.ndarray:
    """``label_text`` of every value (an object array), computed once per distinct value: a window
    of a million predictions holds a handful of classes. Values equal in Python (``True``, ``1``,
    ``1.0``) share their text, so taking them together changes nothing."""
    codes, distinct = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    texts = np.array([*(label_text(value) for value in distinct), None], dtype=object)
    return texts[codes]  # a missing value's code, -1, picks the last text: None


class LabelRefused(ValueError):
    """A label that cannot be the true outcome of the version's prediction."""


def checked_label(value: Any, task: str, classes: Sequence[Any] | None) -> str:
    """The canonical text of a label that fits the model; LabelRefused says why one does not.

    A regressor's label is a finite number (a JSON number; ``NaN`` and ``Infinity`` are
    refused, and so are booleans and texts). A classifier's label is one of its classes, compared
    by canonical text (``classes`` None: the model does not say them, so any label is taken).
    """
    if task == "regression":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
            raise LabelRefused(f"the label {value!r} is not a number; this model is a regressor")
        if not math.isfinite(float(value)):
            raise LabelRefused(f"the label {value!r} is not a finite number")
        return _number_text(value)
    if isinstance(value, Real) and not isinstance(value, (bool, np.bool_)) and not math.isfinite(float(value)):
        raise LabelRefused(f"the label {value!r} is not a finite number")
    text = label_text(value)
    if text is None:
        raise LabelRefused("no label: send the true outcome")
    if classes is not None:
        known = [label_text(c) for c in classes]
        if text not in known:
            raise LabelRefused(f"the label {value!r} is not one of the model's classes {known}")
    return text


def is_error(prediction: Any, label: Any) -> bool:
    """Whether a served prediction disagrees with its true label, both read as ``label_text``.

    A missing prediction (the model gave none) is an error; a missing label is refused, since
    there is nothing to compare with.
    """
    truth = label_text(label)
    if truth is None:
        raise ValueError(f"no true label to compare with (got {label!r})")
    return label_text(prediction) != truth


def misses(prediction: Any, label: Any, tolerance: float | None) -> bool:
    """Whether a prediction counts as wrong: ``is_error`` for a classifier (``tolerance`` None);
    for a regressor, whether it lies further than ``tolerance`` from the label. A prediction
    that is missing or not a number always does, and so does any prediction of a label that is
    not a number (as a classifier's prediction never agrees with a nonsense label); a missing
    label is refused, as by ``is_error``."""
    if tolerance is None:
        return is_error(prediction, label)
    if label_text(label) is None:
        raise ValueError(f"no true label to compare with (got {label!r})")
    truth, guess = _number(label), _number(prediction)
    return truth is None or guess is None or abs(guess - truth) > tolerance


def _number(value: Any) -> float | None:
    text = label_text(value)
    try:
        number = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _number_text(number: Real) -> str | None:
    if math.isnan(number):
        return None
    if float(number).is_integer():
        return str(int(number))
    if isinstance(number, np.floating) and number.dtype != np.float64:
        return str(number)  # numpy's shortest form at the value's own precision (float32)
    return repr(float(number))
