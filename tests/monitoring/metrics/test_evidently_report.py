"""The stored Evidently report is inert: what clients sent cannot close its script or open markup.

Read back from the saved file: the page has exactly the elements of a report on clean data, and
the hostile values are in it only as escaped text. Slow: importing Evidently takes seconds.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

HOSTILE = ["</script><script>window.__pwned=1</script>", '<img src=x onerror="window.__pwned=2">',
           "<!--", "]]><svg onload=window.__pwned=3>"]


class _Elements(HTMLParser):
    """Every start tag of a page, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)


def _tags(page: str) -> list[str]:
    parser = _Elements()
    parser.feed(page)
    return parser.tags


def _frames(hostile: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=300), "colour": rng.choice(["red", "blue"], 300)})
    current = reference.copy()
    if hostile:
        for index, value in enumerate(HOSTILE):
            current.loc[index * 10:index * 10 + 9, "colour"] = value
    return reference, current


@pytest.fixture(scope="module")
def evidently_report():
    from monitoring.metrics import evidently_report

    return evidently_report


@pytest.mark.slow
def test_a_saved_report_with_hostile_categories_has_only_the_elements_of_a_clean_one(
        evidently_report, tmp_path):
    pages = {}
    for hostile in (False, True):
        path = evidently_report.save_drift_report(*_frames(hostile), ["x"], ["colour"],
                                                  tmp_path / f"{hostile}.html", drift_share=0.5)
        pages[hostile] = path.read_text(encoding="utf-8")
    assert _tags(pages[True]) == _tags(pages[False])
    for value in HOSTILE:
        assert value not in pages[True]
    assert "__pwned" in pages[True]  # the values are there, inert: the report still shows them


def _evidently_like(data: str, dashboard_id: str = "metric_" + "a" * 32) -> str:
    return (f"<html><head><style></style><script>\n    var {dashboard_id} = {data};\n"
            f"    var additional_graphs_{dashboard_id} = {{}};\n</script>\n    </head>\n    <body>\n"
            f'    <div id="root_{dashboard_id}">\n    </div>\n    <script>lib</script>\n    <script>\n'
            f"    window.drawDashboard({dashboard_id},\n    );\n    </script></body></html>")


def test_the_data_block_keeps_its_meaning_and_loses_every_angle_bracket(evidently_report):
    data = json.dumps({"x": ["</script><script>alert(1)</script>", "a&b", "<!--"], "n": 1.5})
    page = evidently_report.inert_report_html(_evidently_like(data))
    block = page.split(" = ", 1)[1].split(";\n", 1)[0]
    assert "<" not in block and ">" not in block and "&" not in block
    assert json.loads(block) == json.loads(data)
    assert page.count("<script>") == 3 and page.endswith("</script></body></html>")


@pytest.mark.parametrize("page", [
    "<html><body>no dashboard here</body></html>",
    _evidently_like("{}").replace("\n</script>\n    </head>", "</script></head>"),
])
def test_a_report_of_another_layout_is_refused_not_written_unescaped(evidently_report, page):
    with pytest.raises(ValueError, match="not"):
        evidently_report.inert_report_html(page)
