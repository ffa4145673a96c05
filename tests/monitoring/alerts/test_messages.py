"""Rendering outbox payloads into Slack Block Kit: content, look per severity, Slack's limits."""

from __future__ import annotations

import pytest

from monitoring.alerts.messages import format_value, render, render_plain

PAYLOAD = {
    "title": "Automatic rollback: loan-default v7 -> v5",
    "severity": "critical",
    "facts": {"accuracy": 0.6123456, "baseline accuracy": 0.91, "from version": 7, "to version": 5},
    "text": "Accuracy fell below baseline for 3 evaluations <see dashboard> & act",
    "link": "http://dash.example/models/loan-default",
}


def _fields(blocks):
    return [f["text"] for b in blocks if b["type"] == "section" and "fields" in b for f in b["fields"]]


def test_critical_message_has_header_model_versions_numbers_and_dashboard_button():
    message = render(PAYLOAD, model_name="loan-default", kind="firing")

    assert message.text == ":red_circle: [CRITICAL] loan-default: Automatic rollback: loan-default v7 -&gt; v5"
    header, context = message.blocks[0], message.blocks[1]
    assert header == {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                  "text": ":red_circle: Automatic rollback: loan-default v7 -> v5"}}
    assert context["elements"][0]["text"] == "*CRITICAL* · model `loan-default` · firing"
    # the model first, then the versions, then the numbers in the order given
    assert _fields(message.blocks) == [
        "*Model*\nloan-default", "*from version*\n7", "*to version*\n5",
        "*accuracy*\n0.6123", "*baseline accuracy*\n0.91",
    ]
    text_block = message.blocks[3]
    assert text_block["text"]["text"] == (
        "Accuracy fell below baseline for 3 evaluations &lt;see dashboard&gt; &amp; act"
    )
    assert message.blocks[-1] == {"type": "actions", "elements": [{
        "type": "button", "text": {"type": "plain_text", "text": "Open dashboard"},
        "url": "http://dash.example/models/loan-default"}]}


@pytest.mark.parametrize(("severity", "kind", "look"), [
    ("info", "followup", ":information_source: [INFO]"),
    ("warning", "firing", ":warning: [WARNING]"),
    ("critical", "renotify", ":red_circle: [CRITICAL]"),
    ("critical", "resolved", ":white_check_mark: [RESOLVED]"),
    ("bogus", "firing", ":information_source: [INFO]"),
])
def test_severity_and_resolution_look(severity, kind, look):
    message = render({**PAYLOAD, "severity": severity}, model_name="m", kind=kind)
    assert message.text.startswith(f"{look} m: ")


def test_a_rollbacks_message_opens_its_incident():
    link = "http://127.0.0.1:8501/incidents?id=12"
    message = render({**PAYLOAD, "link": link}, model_name="m", kind="firing")
    assert message.blocks[-1]["elements"][0] == {"type": "button", "url": link,
                                                 "text": {"type": "plain_text", "text": "Open the incident"}}


def test_no_text_and_no_link_means_no_text_block_and_no_button():
    message = render({"title": "Drift", "severity": "warning", "facts": {}}, model_name="m", kind="firing")
    assert [b["type"] for b in message.blocks] == ["header", "context", "section"]
    bad_link = render({**PAYLOAD, "link": "javascript:alert(1)"}, model_name="m", kind="firing")
    assert bad_link.blocks[-1]["type"] != "actions"


def test_everything_is_cut_to_slack_limits():
    payload = {
        "title": "T" * 500,
        "severity": "warning",
        "facts": {f"feature_{i}": "x" * 3000 for i in range(60)},
        "text": "y" * 10_000,
    }
    message = render(payload, model_name="m", kind="firing")

    assert len(message.blocks[0]["text"]["text"]) == 150
    sections = [b for b in message.blocks if b["type"] == "section" and "fields" in b]
    assert [len(s["fields"]) for s in sections] == [10, 10, 10, 10]
    assert all(len(f["text"]) <= 2000 for s in sections for f in s["fields"])
    assert sections[-1]["fields"][-1]["text"] == "*More*\n22 more facts not shown"
    assert len(message.blocks[-1]["text"]["text"]) == 3000
    assert len(message.blocks) <= 50


@pytest.mark.parametrize(("value", "shown"), [
    (None, "—"), (True, "yes"), (False, "no"), (3, "3"), (0.123456, "0.1235"),
    (1234.56, "1,235"), (float("nan"), "nan"), ({"p95": 310}, '{"p95": 310}'), ("v5", "v5"),
])
def test_format_value(value, shown):
    assert format_value(value) == shown


def test_plain_text_carries_the_facts_text_and_link():
    plain = render_plain(PAYLOAD, model_name="loan-default", kind="firing")
    assert plain.splitlines() == [
        ":red_circle: [CRITICAL] loan-default: Automatic rollback: loan-default v7 -&gt; v5",
        "from version: 7", "to version: 5", "accuracy: 0.6123", "baseline accuracy: 0.91",
        "Accuracy fell below baseline for 3 evaluations &lt;see dashboard&gt; &amp; act",
        "http://dash.example/models/loan-default",
    ]


@pytest.mark.parametrize("title", ["loan-default: version 7 degraded", "version 7 degraded"])
def test_the_model_is_named_once_whether_or_not_the_title_names_it(title):
    payload = {"title": title, "severity": "warning"}
    expected = ":warning: [WARNING] loan-default: version 7 degraded"
    assert render(payload, model_name="loan-default", kind="rollback").text == expected
    assert render_plain(payload, model_name="loan-default", kind="rollback").splitlines()[0] == expected
