"""Delivering the outbox to the alert routes (Slack, webhook, PagerDuty, e-mail), each on its own.

``deliver_outbox`` is what the watch loop and the watchdog DAGs call: the default Slack channel
(``monitoring.alerts.delivery.deliver_pending``) unless the routes file lists a Slack route, then
every route (``deliver_routes``, which never raises because of a route). For each route, one run claims that route's due rows in
message order (``monitoring.store.route_deliveries``, which also fans new messages out to it),
sends them one by one and marks each delivered. The first failure counts an attempt, keeps the
error, schedules the retry (the receiver's Retry-After, else capped exponential backoff) and
ends this run for that route only: the route's later messages wait behind it, in order, and
every other route carries on.

A claim is a lease (``LEASE``): a deliverer that dies mid-run leaves its rows to be taken again
when the lease ends, so nothing is lost. A crash between the receiver accepting a message and
the commit re-sends that one message with the same idempotency key (webhook) or dedup key
(PagerDuty), which the receiver folds: delivery is at least once, effectively once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitoring.alerts import email, pagerduty, slack_route, webhook
from monitoring.alerts.delivery import DeliveryReport, backoff_seconds, deliver_pending
from monitoring.alerts.route_http import RouteError
from monitoring.alerts.routes import (
    EmailRoute,
    PagerDutyRoute,
    Route,
    RouteConfigError,
    SlackRoute,
    WebhookRoute,
    has_slack,
    load_routes,
)
from monitoring.settings import Settings
from monitoring.store import outbox_claims, route_deliveries
from monitoring.store.engine import utcnow
from monitoring.store.route_deliveries import RoutedMessage

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)
FAN_OUT_WINDOW = timedelta(days=1)  # a newly added route gets the last day's messages, no older


@dataclass(frozen=True)
class RouteReport:
    route: str
    delivered: int
    failed: int
    pending: int

    def __str__(self) -> str:
        return (f"route {self.route}: {self.delivered} delivered, {self.failed} failed, "
                f"{self.pending} pending")


def deliver_outbox(url: str, settings: Settings, *,
                   now: datetime | None = None) -> tuple[DeliveryReport, list[RouteReport]]:
    """Deliver what is due: Slack (the default channel, or the Slack routes), then every route.

    With Slack routes the outbox rows no route still owes are settled (marked delivered) after
    the run, as the default channel marks what it sent.
    """
    routes = load_routes(settings.alert_routes_file)
    if not has_slack(routes):
        return deliver_pending(url, settings=settings, now=now), deliver_routes(url, routes, now=now)
    now = now or utcnow()
    up_to = route_deliveries.newest_message_id(url)  # fanned out to every route in this run
    reports = deliver_routes(url, routes, now=now)
    route_deliveries.settle(url, up_to=up_to, since=now - FAN_OUT_WINDOW, now=now)
    slack = [r for r, route in zip(reports, routes, strict=True) if isinstance(route, SlackRoute)]
    return DeliveryReport(delivered=sum(r.delivered for r in slack), failed=sum(r.failed for r in slack),
                          pending=outbox_claims.count_pending(url), routed=True), reports


def deliver_routes(
    url: str, routes: tuple[Route, ...], *, now: datetime | None = None, limit: int = 100,
    lease: timedelta = LEASE,
) -> list[RouteReport]:
    """Send each route's due messages; one report per route."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    now = now or utcnow()
    return [_deliver_route(url, route, now=now, limit=limit, lease=lease) for route in routes]


def _deliver_route(url: str, route: Route, *, now: datetime, limit: int,
                   lease: timedelta) -> RouteReport:
    claimed = route_deliveries.claim(
        url, route.name, lambda severity, model: route.accepts(severity=severity, model_name=model),
        now=now, since=now - FAN_OUT_WINDOW, limit=limit, lease=lease,
    )
    send_until = time.monotonic() + lease.total_seconds() / 2
    delivered = failed = 0
    for position, message in enumerate(claimed):
        if time.monotonic() > send_until:
            route_deliveries.release(url, [m.delivery_id for m in claimed[position:]], at=now)
            break
        try:
            _send(url, route, message, now=now)
        except (RouteError, RouteConfigError) as error:
            failed += 1
            wait = getattr(error, "retry_after", None)
            when = route_deliveries.record_failure(
                url, message.delivery_id, str(error),
                lambda attempts, wait=wait: now + timedelta(
                    seconds=wait if wait is not None else backoff_seconds(attempts)))
            log.warning("route %s: message %s not delivered (%s); retry at %s",
                        route.name, message.message_id, error, when.isoformat())
            route_deliveries.release(url, [m.delivery_id for m in claimed[position + 1:]], at=now)
            break
        route_deliveries.mark_delivered(url, message.delivery_id, now=now)
        delivered += 1
    return RouteReport(route=route.name, delivered=delivered, failed=failed,
                       pending=route_deliveries.count_pending(url, route.name))


def _send(url: str, route: Route, message: RoutedMessage, *, now: datetime) -> None:
    if isinstance(route, SlackRoute):
        slack_route.send(url, route, message)
    elif isinstance(route, WebhookRoute):
        webhook.send(route, message, now=now)
    elif isinstance(route, PagerDutyRoute):
        pagerduty.send(route, message)
    elif isinstance(route, EmailRoute):
        email.send(route, message)
