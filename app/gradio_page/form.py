"""The form of the Gradio page, as plain data: which widget each feature gets, and how the
widgets' values become a request row. Pure: no HTTP, no Gradio, no store.

A form is built from what ``GET /model`` says about the champion's features (name and kind)
plus optional hints per feature (categories, observed range, an example value) taken from the
version's reference data. Without hints every feature still gets a usable widget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# widget per JSON kind when no categories are known
_WIDGETS = {"number": "number", "integer": "integer", "boolean": "checkbox", "string": "text"}
_DEFAULT_EXAMPLE = {"number": 0.0, "integer": 0, "boolean": False, "string": ""}


class FormError(ValueError):
    """The form's values cannot make a request row; the message names the fields."""


@dataclass(frozen=True)
class Hint:
    """What the reference data says about one feature."""

    categories: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    example: Any = None


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # number | integer | boolean | string (the API's input schema)
    widget: str  # number | integer | checkbox | dropdown | text
    example: Any
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def signature(self) -> tuple[str, str]:
        return self.name, self.kind

    def info(self) -> str | None:
        """The line under the widget: the range seen in the training data."""
        if self.minimum is None or self.maximum is None:
            return None
        return f"seen in training: {_number_text(self.minimum)} to {_number_text(self.maximum)}"


@dataclass(frozen=True)
class Form:
    model_name: str
    version: int
    fields: tuple[Field, ...] = field(default_factory=tuple)

    @property
    def signature(self) -> tuple[tuple[str, str], ...]:
        return tuple(f.signature for f in self.fields)

    def as_dict(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "version": self.version, "fields": [
            {"name": f.name, "kind": f.kind, "widget": f.widget, "example": f.example,
             "choices": list(f.choices), "minimum": f.minimum, "maximum": f.maximum}
            for f in self.fields]}

    def example_row(self) -> dict[str, Any]:
        return {f.name: f.example for f in self.fields}


def build_form(model: dict[str, Any], hints: dict[str, Hint] | None = None) -> Form:
    """The form for the champion described by a ``GET /model`` answer."""
    if not model.get("loaded") or model.get("version") is None:
        raise FormError(f"no model version is being served for {model.get('model_name', '?')} yet")
    hints = hints or {}
    fields = tuple(_field(feature, hints.get(feature["name"], Hint())) for feature in model.get("features", []))
    if not fields:
        raise FormError(f"{model['model_name']} version {model['version']} declares no input features")
    return Form(model_name=model["model_name"], version=int(model["version"]), fields=fields)


def _field(feature: dict[str, Any], hint: Hint) -> Field:
    name, kind = feature["name"], feature["kind"]
    if kind not in _WIDGETS:
        raise FormError(f"feature {name!r} has kind {kind!r}, which the form cannot show")
    categories = tuple(feature.get("categories") or hint.categories)
    minimum = feature.get("minimum", hint.minimum)
    maximum = feature.get("maximum", hint.maximum)
    example = feature.get("example", hint.example)
    if kind == "string" and categories:
        widget = "dropdown"
        if example not in categories:
            example = categories[0]
    else:
        widget = _WIDGETS[kind]
        categories = ()
        if example is None:
            example = _DEFAULT_EXAMPLE[kind]
        elif kind == "integer":
            example = round(float(example))
        elif kind == "number":
            example = float(example)
    return Field(name=name, kind=kind, widget=widget, example=example, choices=categories,
                 minimum=minimum if kind in {"number", "integer"} else None,
                 maximum=maximum if kind in {"number", "integer"} else None)


def row_from_values(form: Form, values: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    """The request row from the widgets' values (in the form's field order)."""
    if len(values) != len(form.fields):
        raise FormError(f"the form has {len(form.fields)} fields but {len(values)} values arrived; reload the page")
    return row_from_mapping(form, dict(zip((f.name for f in form.fields), values, strict=False)))


def row_from_mapping(form: Form, values: dict[str, Any]) -> dict[str, Any]:
    """The request row from values keyed by feature name, converted to each feature's kind."""
    unknown = sorted(set(values) - {f.name for f in form.fields})
    if unknown:
        raise FormError(f"unknown field(s): {', '.join(unknown)}")
    row, problems = {}, []
    for f in form.fields:
        try:
            row[f.name] = _convert(f, values.get(f.name))
        except (TypeError, ValueError) as error:
            problems.append(f"{f.name}: {error}")
    if problems:
        raise FormError("please fix: " + "; ".join(problems))
    return row


def _convert(f: Field, value: Any) -> Any:
    if f.kind == "boolean":
        return bool(value)
    if value is None or (isinstance(value, str) and not value.strip() and f.kind != "string"):
        raise ValueError("empty")
    if f.kind == "string":
        text = str(value)
        if f.choices and text not in f.choices:
            raise ValueError(f"choose one of {', '.join(f.choices)}")
        return text
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    if f.kind == "integer":
        if not number.is_integer():
            raise ValueError("must be a whole number")
        return int(number)
    return number


def changed_features(old: Form, new: Form) -> str | None:
    """What differs between the features of two forms, in words (None when they match)."""
    if old.signature == new.signature:
        return None
    before, after = dict(old.signature), dict(new.signature)
    parts = []
    added = [n for n in after if n not in before]
    removed = [n for n in before if n not in after]
    retyped = [n for n in after if n in before and before[n] != after[n]]
    if added:
        parts.append("added " + ", ".join(added))
    if removed:
        parts.append("removed " + ", ".join(removed))
    if retyped:
        parts.append("changed type of " + ", ".join(retyped))
    return "; ".join(parts) or "reordered the features"


def feedback_choices(prediction: Any, probability: float | None) -> list[Any]:
    """Outcomes to offer for a prediction: both classes of a 0/1 or true/false classifier, else the
    predicted value (the user may type another)."""
    if isinstance(prediction, bool):
        return [False, True]
    if probability is not None and prediction in (0, 1):
        return [0, 1]
    return [prediction]


def label_like(prediction: Any, label: Any) -> Any:
    """The outcome typed like the prediction (a dropdown may hand back text)."""
    if label is None or (isinstance(label, str) and not label.strip()):
        raise FormError("choose the true outcome first")
    if isinstance(prediction, bool):
        text = str(label).strip().lower()
        if text in {"true", "1", "yes"}:
            return True
        if text in {"false", "0", "no"}:
            return False
        raise FormError(f"the true outcome must be true or false, not {label!r}")
    if isinstance(prediction, int | float) and not isinstance(label, bool):
        try:
            number = float(label)
        except (TypeError, ValueError):
            raise FormError(f"the true outcome must be a number like the prediction, not {label!r}") from None
        return int(number) if number.is_integer() and isinstance(prediction, int) else number
    return label


def _number_text(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"
