"""The Slack route: one outbox message to one Slack channel, in the alert's thread on that route.

A bot-token route (``chat.postMessage``) opens a thread with an alert's "firing" message and puts
the alert's later messages (update, re-notify, acknowledged, resolved) into it, re-notify and
resolved also shown in the channel, as the default Slack channel does
(``monitoring.alerts.delivery``). Each route has its own thread per alert
(``route_deliveries.keep_slack_thread``), so two routes to two channels keep two threads. A webhook
route posts to its webhook's own channel, without threads. When Slack refuses a message's blocks
it is sent again at once as plain text. Every failure comes out as ``RouteError`` (with Slack's
Retry-After on a 429), so ``monitoring.alerts.route_delivery`` retries it like any route.
"""

from __future__ import annotations

from monitoring.alerts.delivery import BROADCAST_KINDS
from monitoring.alerts.messages import render, render_plain
from monitoring.alerts.route_http import RouteError
from monitoring.alerts.routes import SlackRoute, secret
from monitoring.alerts.slack import BotSender, Posted, SlackError, SlackSender, WebhookSender
from monitoring.store import route_deliveries
from monitoring.store.route_deliveries import RoutedMessage


def sender(route: SlackRoute) -> SlackSender:
    """The route's Slack client, with its secret read now (from the variable the route names)."""
    if route.webhook_url_env is not None:
        return WebhookSender(secret(route.webhook_url_env))
    return BotSender(secret(route.token_env), route.channel or "", base_url=route.api_base_url)


def send(url: str, route: SlackRoute, message: RoutedMessage) -> None:
    """Post one message; ``RouteError`` if Slack did not take it."""
    slack = sender(route)
    thread: dict = {}
    if slack.threads and message.alert_id is not None and message.kind != "firing":
        found = route_deliveries.slack_thread(url, message.alert_id, route.name)
        if found is not None:
            thread = {"channel": found[0], "thread_ts": found[1],
                      "broadcast": message.kind in BROADCAST_KINDS}
    try:
        posted = _post(slack, message, thread)
    except SlackError as error:
        raise RouteError(str(error), retry_after=error.retry_after) from None
    if message.alert_id is not None and posted.ts and posted.channel:
        route_deliveries.keep_slack_thread(url, message.alert_id, route.name, channel=posted.channel,
                                           ts=posted.ts, opens=message.kind == "firing")


def _post(slack: SlackSender, message: RoutedMessage, thread: dict) -> Posted:
    rendered = render(message.payload, model_name=message.model_name, kind=message.kind)
    try:
        return slack.post(text=rendered.text, blocks=rendered.blocks, **thread)
    except SlackError as error:
        if not error.rejected:
            raise
    plain = render_plain(message.payload, model_name=message.model_name, kind=message.kind)
    return slack.post(text=plain, blocks=None, **thread)
