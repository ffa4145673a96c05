"""Checking prediction requests against a model's input signature: pure, no I/O.

Rows arrive as JSON objects keyed by feature name (one object, or a list of them). Every row must
carry the model's features (those the signature marks optional may be left out or null) with
values of the declared kind, and no others; anything else is an
``InputError`` whose message names the row, the feature and the problem. The checks run on
plain dicts (no pandas, no pydantic) because they sit on the request's hot path.

A string value is data, never markup: it may be at most ``max_string_chars`` characters long and
may not hold ``<``, ``>``, control characters (C0, DEL, C1), line/paragraph separators or bidi
controls; such a value is refused, not cleaned. Every other character (``&``, quotes, any letter)
is taken as sent and escaped wherever it is shown (the Evidently report, the dashboard).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# MLflow signature column types -> the JSON kind a request must send
_KINDS = {
    "double": "number", "float": "number",
    "long": "integer", "integer": "integer",
    "string": "string",
    "boolean": "boolean",
}
_JSON_SCHEMA = {
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
}


# characters a category value may not carry: markup delimiters, control and invisible-direction ones
_REFUSED_CHARACTERS = re.compile("[<>\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
DEFAULT_MAX_STRING_CHARS = 200


class InputError(ValueError):
    """The request cannot be scored; the message says which row and feature, and why."""

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message)
        self.too_large = too_large


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _is_number(value: Any) -> bool:
    kind = type(value)
    return kind is float or kind is int


def _is_integer(value: Any) -> bool:
    kind = type(value)
    return kind is int or (kind is float and value.is_integer())


_CHECKS = {
    "number": _is_number,
    "integer": _is_integer,
    "string": lambda value: type(value) is str,
    "boolean": lambda value: type(value) is bool,
}


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # number | integer | string | boolean
    signature_type: str = "double"  # the MLflow column type: double, float, long, integer, ...
    required: bool = True  # an optional feature may be left out or sent as null


@dataclass(frozen=True)
class InputSchema:
    features: tuple[Feature, ...]
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _required: frozenset[str] = field(init=False, repr=False, compare=False)
    _checks: tuple[tuple[str, str, Any], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("a model input schema needs at least one feature")
        object.__setattr__(self, "_names", frozenset(f.name for f in self.features))
        object.__setattr__(self, "_required", frozenset(f.name for f in self.features if f.required))
        object.__setattr__(self, "_checks", tuple((f.name, f.kind, _CHECKS[f.kind]) for f in self.features))

    @classmethod
    def from_signature(cls, columns: list[dict[str, Any]]) -> InputSchema:
        """From MLflow's signature inputs (``[{"name": ..., "type": "double"}, ...]``)."""
        features = []
        for column in columns:
            if column.get("type") == "tensor" or "name" not in column:
                raise ValueError("the model signature has unnamed (tensor) inputs; Vigil needs named "
                                 "features: log the model with a signature inferred from a DataFrame, "
                                 "mlflow.models.infer_signature(X_frame, y)")
            kind = _KINDS.get(column.get("type", ""))
            if kind is None:
                raise ValueError(f"feature {column['name']!r} has type {column.get('type')!r}, "
                                 f"which Vigil cannot take from JSON")
            features.append(Feature(column["name"], kind, column["type"], column.get("required", True)))
        return cls(tuple(features))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def all_required(self) -> bool:
        return self._names == self._required

    def rows(self, payload: Any, max_rows: int, max_string_chars: int = DEFAULT_MAX_STRING_CHARS,
             ) -> tuple[list[dict[str, Any]], bool]:
        """The checked rows of a request body, and whether it was a single row (an object)."""
        if isinstance(payload, dict):
            rows, single = [payload], True
        elif isinstance(payload, list):
            rows, single = payload, False
            if not rows:
                raise InputError("the batch is empty: send at least one row")
            if len(rows) > max_rows:
                raise InputError(f"the batch has {len(rows)} rows; at most {max_rows} are accepted "
                                 f"per request", too_large=True)
        else:
            raise InputError(f"the body must be a JSON object (one row) or an array of objects "
                             f"(a batch), not {_json_kind(payload)}")
        for index, row in enumerate(rows):
            self._check_row(row, None if single else index, max_string_chars)
        return rows, single

    def _check_row(self, row: Any, index: int | None, max_string_chars: int) -> None:
        where = "" if index is None else f"row {index}: "
        if type(row) is not dict:
            raise InputError(f"{where}a row must be a JSON object keyed by feature name, not {_json_kind(row)}")
        if row.keys() != self._names and not self._names >= row.keys() >= self._required:
            missing = [f.name for f in self.features if f.name not in row and f.required]
            unknown = sorted(k for k in row if k not in self._names)
            problems = []
            if missing:
                problems.append(f"missing feature(s): {', '.join(missing)}")
            if unknown:
                problems.append(f"unknown feature(s): {', '.join(unknown)}")
            raise InputError(where + "; ".join(problems))
        for name, kind, check in self._checks:
            value = row.get(name)
            if not check(value) and (value is not None or name in self._required):
                raise InputError(f"{where}feature {name!r} must be {'an' if kind == 'integer' else 'a'} "
                                 f"{kind}, got {_json_kind(value)} {_short(value)}")
            if kind == "string" and value is not None:
                problem = string_problem(value, max_string_chars)
                if problem is not None:
                    raise InputError(f"{where}feature {name!r} {problem}")

    def row_json_schema(self) -> dict[str, Any]:
        """The JSON schema of one row (for the OpenAPI document)."""
        return {
            "type": "object",
            "properties": {f.name: _property(f) for f in self.features},
            "required": [f.name for f in self.features if f.required],
            "additionalProperties": False,
        }


def _property(feature: Feature) -> dict[str, Any]:
    kind = _JSON_SCHEMA[feature.kind]["type"]
    return {"type": kind} if feature.required else {"type": [kind, "null"]}


def string_problem(value: str, max_chars: int) -> str | None:
    """Why a string feature value is refused (length, characters), or None when it is fine."""
    if len(value) > max_chars:
        return f"is {len(value)} characters long; at most {max_chars} are accepted"
    found = _REFUSED_CHARACTERS.search(value)
    if found is not None:
        return (f"holds the character {found.group()!r} (U+{ord(found.group()):04X}) at position "
                f"{found.start()}; '<', '>' and control characters are not accepted in a value")
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
