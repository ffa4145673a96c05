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


@pytest.mark.parametrize(("value", "message"), [
    ("</script><script>window.__pwned=1</script>", "holds the character '<' (U+003C) at position 0"),
    ('<img src=x onerror="alert(1)">', "'<'"),
    ("north>", "'>' (U+003E) at position 5"),
    ("no\nrth", "U+000A"),
    ("nor\x00th", "U+0000"),
    ("nor\x7fth", "U+007F"),
    ("nor\x85th", "U+0085"),
    ("nor\u2028th", "U+2028"),
    ("\u202ehtron", "U+202E"),
    ("x" * 201, "is 201 characters long; at most 200 are accepted"),
])
def test_a_string_value_that_could_be_markup_or_is_too_long_is_refused(value, message):
    with pytest.raises(InputError) as error:
        SCHEMA.rows({**ROW, "region": value}, 10)
    assert "feature 'region'" in str(error.value) and message in str(error.value)
    assert len(str(error.value)) < 200  # the value itself is not echoed back


@pytest.mark.parametrize("value", ["x" * 200, "north & south", 'say "hi"', "l'est", "Zürich", "北", ""])
def test_other_strings_are_taken_as_sent(value):
    assert SCHEMA.rows({**ROW, "region": value}, 10)[0][0]["region"] == value


def test_the_length_limit_is_the_callers():
    assert SCHEMA.rows({**ROW, "region": "x" * 300}, 10, max_string_chars=300)[0][0]["region"] == "x" * 300
    with pytest.raises(InputError, match="at most 5"):
        SCHEMA.rows([ROW, {**ROW, "region": "abcdef"}], 10, max_string_chars=5)
