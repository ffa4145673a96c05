"""Request rows checked against a model signature: which problems are named, and how."""

from __future__ import annotations

import pytest

from monitoring.serving.input_schema import InputError, InputSchema

SCHEMA = InputSchema.from_signature([
    {"name": "age", "type": "double"}, {"name": "accounts", "type": "long"},
    {"name": "region", "type": "string"}, {"name": "member", "type": "boolean"},
])
ROW = {"age": 31.5, "accounts": 2, "region": "north", "member": False}


def test_one_object_is_one_row_and_an_array_is_a_batch():
    assert SCHEMA.rows(ROW, 10) == ([ROW], True)
    assert SCHEMA.rows([ROW, {**ROW, "age": 40}], 10) == ([ROW, {**ROW, "age": 40}], False)
    assert SCHEMA.rows({**ROW, "age": 40, "accounts": 3.0}, 10)[1] is True  # integral float is an integer


@pytest.mark.parametrize(("payload", "message"), [
    ({**ROW, "x": 1}, "unknown feature(s): x"),
    ({k: v for k, v in ROW.items() if k != "age"}, "missing feature(s): age"),
    ({"age": 1, "accounts": 1, "x": 1, "y": 2}, "missing feature(s): region, member; unknown feature(s): x, y"),
    ({**ROW, "age": "31"}, "feature 'age' must be a number, got string '31'"),
    ({**ROW, "age": None}, "feature 'age' must be a number, got null"),
    ({**ROW, "age": True}, "feature 'age' must be a number, got boolean"),
    ({**ROW, "accounts": 2.5}, "feature 'accounts' must be an integer, got number 2.5"),
    ({**ROW, "region": 7}, "feature 'region' must be a string, got integer 7"),
    ({**ROW, "member": 1}, "feature 'member' must be a boolean, got integer 1"),
    ([ROW, {**ROW, "region": {"a": 1}}], "row 1: feature 'region' must be a string, got object"),
    ([ROW, 3], "row 1: a row must be a JSON object"),
    ([], "the batch is empty"),
    ("x", "not string"),
    (None, "not null"),
])
def test_problems_are_named(payload, message):
    with pytest.raises(InputError) as error:
        SCHEMA.rows(payload, 10)
    assert message in str(error.value)
    assert error.value.too_large is False


def test_an_oversized_batch_is_flagged_as_too_large():
    with pytest.raises(InputError) as error:
        SCHEMA.rows([ROW] * 11, 10)
    assert error.value.too_large is True
    assert "11 rows" in str(error.value) and "at most 10" in str(error.value)


def test_long_values_are_shortened_in_messages():
    with pytest.raises(InputError) as error:
        SCHEMA.rows({**ROW, "age": "x" * 1000}, 10)
    assert len(str(error.value)) < 120


def test_signature_types_it_cannot_take_are_refused():
    with pytest.raises(ValueError, match="binary"):
        InputSchema.from_signature([{"name": "blob", "type": "binary"}])
    with pytest.raises(ValueError, match="at least one feature"):
        InputSchema.from_signature([])


def test_json_schema_of_a_row():
    schema = SCHEMA.row_json_schema()
    assert schema["required"] == ["age", "accounts", "region", "member"]
    assert schema["properties"]["accounts"] == {"type": "integer"}
    assert schema["additionalProperties"] is False
