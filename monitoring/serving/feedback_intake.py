"""Which labels sent to ``/feedback`` are taken, and why the others are not. Pure: no I/O.

A label is taken for a prediction that exists and was made for the sender's client (or by a
key with ``feedback_all``), when it fits the version (``monitoring.labels.checked_label``: a
finite number for a regressor, one of the classes for a classifier), and when the prediction
has no label yet: the first label stands. Replacing one is a correction (``correction`` with a
reason, scope ``correct``), audited by the store. Each item gets its own verdict, an HTTP
status and a sentence: 200 taken, 403 scope, 404 no such prediction for this client, 409 already
labelled (or repeated in the batch), 422 a label that does not fit the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitoring.client_keys import CORRECT, FEEDBACK_ALL, TRUSTED, Grant
from monitoring.labels import LabelRefused, checked_label
from monitoring.serving.model_output import CLASSIFICATION
from monitoring.store.feedback import Correction, Made, NewLabel


@dataclass(frozen=True)
class LabelRule:
    """What a version's labels must be: its task and, for a classifier, its classes if known."""

    task: str
    classes: tuple[Any, ...] | None


ANY_LABEL = LabelRule(CLASSIFICATION, None)  # no loaded version says more: any finite label


class LabelRules:
    """The rule of each version this API process has loaded (told by the champion holder)."""

    def __init__(self) -> None:
        self._rules: dict[tuple[str, int], LabelRule] = {}

    def learn(self, champion: Any) -> None:
        classes = getattr(champion.servable.native, "classes_", None)
        self._rules[(champion.model_name, champion.version)] = LabelRule(
            champion.servable.task, tuple(classes.tolist() if hasattr(classes, "tolist") else classes)
            if classes is not None and champion.is_classifier else None)

    def rule(self, model_name: str, version: int, current: Any | None) -> LabelRule:
        """The version's rule; one never loaded here takes the served champion's (same model)."""
        if current is not None and (current.model_name, current.version) not in self._rules:
            self.learn(current)  # a local copy served at start is not told by the holder
        found = self._rules.get((model_name, version))
        if found is not None:
            return found
        if current is not None and current.model_name == model_name:
            return self._rules.get((model_name, current.version), ANY_LABEL)
        return ANY_LABEL


@dataclass(frozen=True)
class Item:
    prediction_id: str
    label: Any
    correction: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class Verdict:
    prediction_id: str
    status: int
    detail: str


@dataclass
class Judged:
    verdicts: list[Verdict]
    new: list[NewLabel]
    corrections: list[Correction]


def judge_all(items: Sequence[Item], found: dict[str, Made], grant: Grant,
              rule_for: Callable[[Made], LabelRule]) -> Judged:
    """A verdict per item (in order) and the writes the taken ones need."""
    judged = Judged([], [], [])
    seen: set[str] = set()
    for item in items:
        if item.prediction_id in seen:
            judged.verdicts.append(Verdict(item.prediction_id, 409, "repeated in this batch: the first one counts"))
            continue
        seen.add(item.prediction_id)
        judged.verdicts.append(_judge(item, found.get(item.prediction_id), grant, rule_for, judged))
    return judged


def _judge(item: Item, made: Made | None, grant: Grant, rule_for: Callable[[Made], LabelRule],
           judged: Judged) -> Verdict:
    pid = item.prediction_id
    if made is None or (made.client != grant.client and FEEDBACK_ALL not in grant.scopes):
        whose = f" made for {grant.client}" if grant.client else ""
        return Verdict(pid, 404, f"no prediction {pid}{whose}; nothing was stored")
    try:
        text = checked_label(item.label, *_rule_values(rule_for(made)))
    except LabelRefused as error:
        return Verdict(pid, 422, f"{error}; nothing was stored")
    if item.correction:
        return _correct(item, made, text, grant, judged)
    if made.label is not None:
        return Verdict(pid, 409, f"already labelled {made.label!r}: the first label stands (a correction "
                                 f"needs \"correction\": true, a reason and the scope {CORRECT!r})")
    judged.new.append(NewLabel(pid, made.model_name, text))
    return Verdict(pid, 200, "recorded")


def _correct(item: Item, made: Made, text: str, grant: Grant, judged: Judged) -> Verdict:
    pid = item.prediction_id
    if CORRECT not in grant.scopes:
        return Verdict(pid, 403, f"a correction needs a key with the scope {CORRECT!r}")
    if not item.reason or not item.reason.strip():
        return Verdict(pid, 422, "a correction needs a reason (it goes into the audit trail)")
    if made.label is None:
        return Verdict(pid, 409, "nothing to correct: the prediction has no label yet; send it without correction")
    if made.label == text:
        return Verdict(pid, 200, "unchanged: the label already is this")
    judged.corrections.append(Correction(pid, made.model_name, made.label, text, item.reason.strip()))
    return Verdict(pid, 200, f"corrected from {made.label!r}")


def _rule_values(rule: LabelRule) -> tuple[str, tuple[Any, ...] | None]:
    return rule.task, rule.classes


def settle(verdicts: list[Verdict], lost: set[str]) -> list[Verdict]:
    """The verdicts once written: a taken label that lost the race with another is a 409."""
    return [Verdict(v.prediction_id, 409, "labelled by another request meanwhile: the first label stands")
            if v.status == 200 and v.prediction_id in lost else v for v in verdicts]


def is_trusted(grant: Grant) -> bool:
    return TRUSTED in grant.scopes
