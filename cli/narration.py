"""The demo's narrator: says what the watchdog did when it did it, read from Vigil's store.

While the story plays, ``Narrator.poll`` runs every second in a thread of its own: each new
rollback is told at once ("version 2 rolled back to version 1 by the watchdog 7.4 s after the
promotion, on 96 labels (accuracy 0.54 vs baseline 0.83)", ``monitoring.incidents.narration``),
then, once the restored version answers, how long users were served by the bad one; with Slack
off, every message Vigil would have sent is printed as Slack would show it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from monitoring.incidents import assemble, duration, incident_url, narration
from monitoring.store import incidents as store_incidents

log = logging.getLogger(__name__)


class Narrator:
    """Tells the rollbacks and (Slack off) the messages recorded after it was made."""

    def __init__(self, url: str, model_name: str, *, say: Callable[[str], None], slack_on: bool,
                 dashboard_url: str):
        self.url, self.model_name, self.say = url, model_name, say
        self.slack_on, self.dashboard_url = slack_on, dashboard_url
        self.last_event, self.last_message = store_incidents.newest_ids(url)
        self.waiting: set[int] = set()  # told rollbacks whose restored version has not answered yet

    def poll(self) -> None:
        """One look at the store: new rollbacks, restored versions answering, new messages."""
        for _name, move in reversed(store_incidents.rollbacks(self.url, self.model_name, after_id=self.last_event)):
            self.last_event = max(self.last_event, move.id)
            facts = store_incidents.facts(self.url, move.id)
            if facts is not None:
                self.say(f"==> {narration(assemble(facts))}")
                self.say(f"    incident: {incident_url(self.dashboard_url, move.id)}")
                self.waiting.add(move.id)
        for event_id in sorted(self.waiting):
            self._restored(event_id)
        if not self.slack_on:
            for message in store_incidents.messages_after(self.url, self.last_message, self.model_name):
                self.last_message = message.id
                self.say("    Slack is off; it would have said:\n" + _indent(message.text))

    def _restored(self, event_id: int) -> None:
        facts = store_incidents.facts(self.url, event_id)
        if facts is None or facts.restored_serving_at is None:
            return
        incident = assemble(facts)
        self.waiting.discard(event_id)
        after = (facts.restored_serving_at - facts.rollback.created_at).total_seconds()
        self.say(f"==> the API answers with version {incident.restored_version} again {after:.1f} s after "
                 f"the rollback: version {incident.bad_version} gave {incident.served.requests} answers, "
                 f"{incident.served.wrong} of {incident.served.labelled} labelled ones wrong; time to recover "
                 f"{duration(incident.seconds_to_recover)}")

    def run(self, stop: threading.Event, every: float = 1.0) -> None:
        """``poll`` every ``every`` seconds until ``stop`` is set; a failed look is logged, not fatal."""
        while not stop.wait(every):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the story goes on without its narration
                log.exception("the narrator could not read the store")


def _indent(text: str) -> str:
    return "\n".join(f"      | {line}" for line in text.splitlines())
