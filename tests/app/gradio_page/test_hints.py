"""Form hints from a reference frame: ranges and typical values, categories by frequency."""

from __future__ import annotations

import pandas as pd

from app.gradio_page.form import Hint
from app.gradio_page.hints import MAX_CATEGORIES, hints_from_frame


def test_ranges_medians_and_categories_most_frequent_first():
    frame = pd.DataFrame({"age": [20.0, 30.0, 60.0, None], "region": ["south", "north", "south", None]})
    assert hints_from_frame(frame, ["age"], ["region"]) == {
        "age": Hint(minimum=20.0, maximum=60.0, example=30.0),
        "region": Hint(categories=("south", "north"), example="south"),
    }


def test_an_empty_column_gives_no_hint_and_categories_are_capped():
    frame = pd.DataFrame({"age": [None, None], "code": ["a", "b"]})
    assert "age" not in hints_from_frame(frame, ["age"], ["code"])
    many = pd.DataFrame({"code": [f"c{i}" for i in range(MAX_CATEGORIES + 10)]})
    assert len(hints_from_frame(many, [], ["code"])["code"].categories) == MAX_CATEGORIES
