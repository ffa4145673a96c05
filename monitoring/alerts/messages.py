"""Turning an outbox payload into a Slack message: Block Kit blocks and the fallback text.

Pure: no I/O. The payload is what ``monitoring.store.outbox.enqueue`` stored (title, severity, facts,
text, link); the model name and the message kind come from the outbox row. Everything is cut to
Slack's documented limits, so a long title or many facts never make Slack refuse the message.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

SEVERITY_LOOK = {  # severity -> (emoji, label)
    "info": (":information_source:", "INFO"),
    "warning": (":warning:", "WARNING"),
    "critical": (":red_circle:", "CRITICAL"),
}
RESOLVED_LOOK = (":white_check_mark:", "RESOLVED")
KIND_LABELS = {
    "firing": "firing",
    "renotify": "still firing",
    "acknowledged": "acknowledged",
    "resolved": "resolved",
    "followup": "follow-up",
    "outside_move": "alias moved outside Vigil",
    "adopt": "adopted",
}

# Slack Block Kit limits
HEADER_CHARS = 150
SECTION_CHARS = 3000
FIELD_CHARS = 2000
FIELDS_PER_SECTION = 10
MAX_FIELDS = 40  # keeps the message well under Slack's 50 blocks
BUTTON_URL_CHARS = 3000


@dataclass(frozen=True)
class SlackMessage:
    text: str  # shown in notifications and where blocks cannot be shown
    blocks: list[dict[str, Any]]


def render(payload: dict[str, Any], *, model_name: str, kind: str) -> SlackMessage:
    """The Slack message for one outbox row."""
    emoji, label = _look(payload.get("severity"), kind)
    title = str(payload.get("title") or "Vigil notification")
    facts = payload.get("facts") or {}
    text = str(payload.get("text") or "")
    link = payload.get("link")

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(f"{emoji} {title}", HEADER_CHARS),
                                    "emoji": True}},
        {"type": "context", "elements": [{
            "type": "mrkdwn",
            "text": f"*{label}* · model `{escape(model_name)}` · {escape(KIND_LABELS.get(kind, kind))}",
        }]},
    ]
    fields = [_field("Model", model_name)] + [_field(name, value) for name, value in _ordered(facts)]
    if len(fields) > MAX_FIELDS:
        hidden = len(fields) - (MAX_FIELDS - 1)
        fields = fields[: MAX_FIELDS - 1] + [_field("More", f"{hidden} more facts not shown")]
    for start in range(0, len(fields), FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start:start + FIELDS_PER_SECTION]})
    if text:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(escape(text), SECTION_CHARS)}})
    if isinstance(link, str) and link.startswith(("http://", "https://")) and len(link) <= BUTTON_URL_CHARS:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": _button(link)}, "url": link,
        }]})
    fallback = escape(_headline(emoji, label, model_name, title))
    return SlackMessage(text=_cut(fallback, SECTION_CHARS), blocks=blocks)


def _button(link: str) -> str:
    return "Open the incident" if "/incidents?id=" in link else "Open dashboard"


def render_plain(payload: dict[str, Any], *, model_name: str, kind: str) -> str:
    """The same message as plain text, for when Slack refuses the blocks."""
    emoji, label = _look(payload.get("severity"), kind)
    lines = [_headline(emoji, label, model_name, str(payload.get("title") or "Vigil notification"))]
    lines += [f"{name}: {format_value(value)}" for name, value in _ordered(payload.get("facts") or {})]
    lines += [str(part) for part in (payload.get("text"), payload.get("link")) if part]
    return _cut(escape("\n".join(lines)), SECTION_CHARS)


def _headline(emoji: str, label: str, model_name: str, title: str) -> str:
    """``:emoji: [LABEL] model: title``, the model named once when the title already starts with it."""
    named = title if title.startswith(f"{model_name}: ") else f"{model_name}: {title}"
    return f"{emoji} [{label}] {named}"


def format_value(value: Any) -> str:
    """A fact's value as a person reads it: numbers rounded, nothing as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, separators=(", ", ": "))
    return str(value)


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _look(severity: Any, kind: str) -> tuple[str, str]:
    if kind == "resolved":
        return RESOLVED_LOOK
    return SEVERITY_LOOK.get(severity, SEVERITY_LOOK["info"])


def _ordered(facts: dict[str, Any]) -> list[tuple[str, Any]]:
    """Versions first (the on-call asks "which version?" first), then the rest as given."""
    items = list(facts.items())
    return [i for i in items if "version" in i[0].lower()] + [i for i in items if "version" not in i[0].lower()]


def _field(name: str, value: Any) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _cut(f"*{escape(str(name))}*\n{escape(format_value(value))}", FIELD_CHARS)}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
