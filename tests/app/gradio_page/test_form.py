"""The form as plain data: widgets per feature kind, values to request rows, what changed."""

from __future__ import annotations

import pytest

from app.gradio_page.form import (
    Form,
    FormError,
    Hint,
    build_form,
    changed_features,
    feedback_choices,
    label_like,
    row_from_mapping,
    row_from_values,
)

MODEL = {"model_name": "loans", "loaded": True, "version": 4, "features": [
    {"name": "age", "kind": "number"}, {"name": "accounts", "kind": "integer"},
    {"name": "region", "kind": "string"}, {"name": "note", "kind": "string"},
    {"name": "vip", "kind": "boolean"},
]}
HINTS = {"age": Hint(minimum=18.0, maximum=80.0, example=41.5), "accounts": Hint(minimum=0, maximum=12, example=3.4),
         "region": Hint(categories=("north", "south"), example="south")}


def test_each_feature_gets_the_widget_of_its_kind_with_its_hints():
    form = build_form(MODEL, HINTS)
    widgets = {f.name: (f.widget, f.example, f.choices) for f in form.fields}
    assert (form.model_name, form.version) == ("loans", 4)
    assert widgets == {"age": ("number", 41.5, ()), "accounts": ("integer", 3, ()),
                       "region": ("dropdown", "south", ("north", "south")), "note": ("text", "", ()),
                       "vip": ("checkbox", False, ())}
    assert form.fields[0].info() == "seen in training: 18 to 80"
    assert form.fields[2].info() is None


def test_without_hints_every_feature_still_has_a_usable_widget_and_example():
    form = build_form(MODEL)
    assert [f.widget for f in form.fields] == ["number", "integer", "text", "text", "checkbox"]
    assert form.example_row() == {"age": 0.0, "accounts": 0, "region": "", "note": "", "vip": False}


def test_the_api_may_describe_categories_and_examples_itself():
    model = {**MODEL, "features": [{"name": "region", "kind": "string", "categories": ["east", "west"],
                                    "example": "west"}]}
    (field,) = build_form(model, HINTS).fields
    assert (field.widget, field.choices, field.example) == ("dropdown", ("east", "west"), "west")


def test_no_model_served_or_no_features_is_a_clear_error():
    with pytest.raises(FormError, match="no model version is being served for loans"):
        build_form({"model_name": "loans", "loaded": False, "features": []})
    with pytest.raises(FormError, match="declares no input features"):
        build_form({**MODEL, "features": []})
    with pytest.raises(FormError, match="kind 'array'"):
        build_form({**MODEL, "features": [{"name": "x", "kind": "array"}]})


def test_widget_values_become_a_row_of_the_declared_kinds():
    form = build_form(MODEL, HINTS)
    assert row_from_values(form, [30, 2.0, "north", "hi", None]) == \
        {"age": 30.0, "accounts": 2, "region": "north", "note": "hi", "vip": False}
    assert row_from_mapping(form, {"age": "30.5", "accounts": "7", "region": "south", "note": "", "vip": True}) == \
        {"age": 30.5, "accounts": 7, "region": "south", "note": "", "vip": True}


def test_bad_values_are_all_named_at_once():
    form = build_form(MODEL, HINTS)
    with pytest.raises(FormError) as caught:
        row_from_values(form, [None, 2.5, "west", "x", True])
    assert str(caught.value) == ("please fix: age: empty; accounts: must be a whole number; "
                                 "region: choose one of north, south")
    with pytest.raises(FormError, match="unknown field"):
        row_from_mapping(form, {"height": 2})
    with pytest.raises(FormError, match="5 fields but 2 values"):
        row_from_values(form, [1, 2])


def test_what_changed_between_two_feature_sets_is_said_in_words():
    old = build_form(MODEL)
    same = build_form({**MODEL, "version": 5}, HINTS)
    assert changed_features(old, same) is None
    new = Form("loans", 6, (build_form(MODEL).fields[0],
                            *build_form({**MODEL, "features": [{"name": "accounts", "kind": "number"},
                                                               {"name": "city", "kind": "string"}]}).fields))
    assert changed_features(old, new) == "added city; removed region, note, vip; changed type of accounts"


def test_outcomes_offered_and_typed_like_the_prediction():
    assert feedback_choices(1, 0.8) == [0, 1]
    assert feedback_choices(True, 0.8) == [False, True]
    assert feedback_choices("approved", 0.8) == ["approved"]
    assert feedback_choices(12.5, None) == [12.5]
    assert label_like(0, "1") == 1 and isinstance(label_like(0, "1"), int)
    assert label_like(True, "false") is False
    assert label_like(12.5, "13") == 13.0
    assert label_like("approved", "denied") == "denied"
    with pytest.raises(FormError, match="choose the true outcome first"):
        label_like(1, None)
    with pytest.raises(FormError, match="must be a number"):
        label_like(1, "maybe")
