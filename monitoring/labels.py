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
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np

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


def is_error(prediction: Any, label: Any) -> bool:
    """Whether a served prediction disagrees with its true label, both read as ``label_text``.

    A missing prediction (the model gave none) is an error; a missing label is refused, since
    there is nothing to compare with.
    """
    truth = label_text(label)
    if truth is None:
        raise ValueError(f"no true label to compare with (got {label!r})")
    return label_text(prediction) != truth


def _number_text(number: Real) -> str | None:
    if math.isnan(number):
        return None
    if float(number).is_integer():
        return str(int(number))
    if isinstance(number, np.floating) and number.dtype != np.float64:
        return str(number)  # numpy's shortest form at the value's own precision (float32)
    return repr(float(number))
