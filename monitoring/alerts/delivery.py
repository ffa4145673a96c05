"""Delivering the outbox to Slack: in order, with retries and backoff, never losing a message.

``deliver_pending`` is called by the watch loop and the watchdog DAG; it never raises because of
Slack. One run:

1. Claims a batch of due, undelivered rows in id order in a short transaction, by leasing them
   (``next_attempt_at`` moved ``LEASE`` ahead), so a second deliverer running at the same time
   skips them (``monitoring.store.outbox_claims``). Nothing is locked while talking to Slack, so
   a slow or dead Slack never holds up a rollback's transaction.
2. Keeps each alert's messages in order: a row waits while an earlier message of its alert is
   undelivered, so a follow-up never overtakes the message that opens its thread.
3. Posts each row: an alert's "firing" message opens a thread (its channel and ts are stored on
   the alert); the alert's later messages go into that thread.
4. On failure the row's ``attempts`` goes up, ``last_error`` is kept and the retry is scheduled:
   at Slack's Retry-After on a 429, else with capped exponential backoff. If Slack as a whole is
   unavailable (down, 5xx, 429, bad token) the run stops and every waiting row is moved to that
   same retry time, so they all go out, in order, when Slack is back. If Slack refuses only
   this message's blocks, it is sent again as plain text at once.

A run sends for at most half its lease, then gives the rest of its batch back: its last send
(at most about 4 x ``slack.TIMEOUT_SECONDS``) ends well before the lease does, so another
deliverer never takes over a row this one is still sending, however slow Slack is.

A crash between Slack accepting a message and the commit re-sends that one message after the
lease: delivery is at least once; each row is sent once otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitoring.alerts.messages import render, render_plain
from monitoring.alerts.slack import Posted, SlackError, SlackSender, sender_from_settings
from monitoring.settings import Settings, get_settings
from monitoring.store import outbox_claims
from monitoring.store.engine import utcnow

LEASE = timedelta(minutes=2)  # half of it is far longer than one send can take (see above)
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 600.0
BROADCAST_KINDS = frozenset({"renotify", "resolved"})  # thread replies also shown in the channel


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    failed: int
    pending: int  # undelivered rows left in the outbox after this run
    slack_enabled: bool = True
    routed: bool = False  # sent by the Slack routes of the routes file, not the default channel

    def __str__(self) -> str:
        if self.routed:
            return (f"Slack routes: {self.delivered} delivered, {self.failed} failed; "
                    f"{self.pending} messages still owed to a route")
        if not self.slack_enabled:
            return (f"Slack is off (no VIGIL_SLACK_BOT_TOKEN or VIGIL_SLACK_WEBHOOK_URL): "
                    f"nothing sent, {self.pending} messages wait in the outbox")
        return f"Slack: {self.delivered} delivered, {self.failed} failed, {self.pending} pending"


def backoff_seconds(attempts: int) -> float:
    """Wait before the next try after ``attempts`` failed ones: 10 s, 20 s, 40 s ... 10 min."""
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))


def deliver_pending(
    url: str,
    *,
    sender: SlackSender | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
    limit: int = 100,
    lease: timedelta = LEASE,
) -> DeliveryReport:
    """Send up to ``limit`` due outbox messages of the store at ``url`` to Slack."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    now = now or utcnow()
    if sender is None:
        sender = sender_from_settings(settings or get_settings())
    if sender is None:
        return DeliveryReport(delivered=0, failed=0, pending=outbox_claims.count_pending(url),
                              slack_enabled=False)

    claimed = outbox_claims.claim(url, now=now, limit=limit, lease=lease)
    send_until = time.monotonic() + lease.total_seconds() / 2
    delivered = failed = 0
    stalled_alerts: set[int] = set()  # an earlier message of theirs failed in this run
    for position, (message_id, alert_id) in enumerate(claimed):
        if time.monotonic() > send_until:  # give the rest back while the lease still holds
            outbox_claims.release(url, [m for m, _ in claimed[position:]], at=now)
            break
        if alert_id in stalled_alerts:
            outbox_claims.release(url, [message_id], at=now)
            continue
        error = _send(url, sender, message_id, now=now)
        if error is None:
            delivered += 1
            continue
        failed += 1
        retry_at = _record_failure(url, message_id, error, now=now)
        if not error.rejected:
            outbox_claims.defer_queue(url, [m for m, _ in claimed[position + 1:]], until=retry_at)
            break
        if alert_id is not None:
            stalled_alerts.add(alert_id)
    return DeliveryReport(delivered=delivered, failed=failed, pending=outbox_claims.count_pending(url))


def _send(url: str, sender: SlackSender, message_id: int, *, now: datetime) -> SlackError | None:
    """Post one claimed row and mark it delivered; the error if Slack did not take it."""
    message = outbox_claims.pending_message(url, message_id)
    rendered = render(message.payload, model_name=message.model_name, kind=message.kind)
    plain = render_plain(message.payload, model_name=message.model_name, kind=message.kind)
    thread = {}
    if sender.threads and message.kind != "firing" and message.slack_thread_ts:
        thread = {"channel": message.slack_channel, "thread_ts": message.slack_thread_ts,
                  "broadcast": message.kind in BROADCAST_KINDS}
    try:
        posted = _post(sender, rendered.text, rendered.blocks, plain, thread)
    except SlackError as error:
        return error
    outbox_claims.mark_delivered(url, message, now=now, channel=posted.channel, ts=posted.ts)
    return None


def _post(sender: SlackSender, text: str, blocks: list, plain: str, thread: dict) -> Posted:
    try:
        return sender.post(text=text, blocks=blocks, **thread)
    except SlackError as error:
        if not error.rejected:
            raise
        return sender.post(text=plain, blocks=None, **thread)


def _record_failure(url: str, message_id: int, error: SlackError, *, now: datetime) -> datetime:
    def retry_at(attempts: int) -> datetime:
        wait = error.retry_after if error.retry_after is not None else backoff_seconds(attempts)
        return now + timedelta(seconds=wait)

    return outbox_claims.record_failure(url, message_id, str(error), retry_at)
