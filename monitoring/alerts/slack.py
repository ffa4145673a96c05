"""Posting one message to Slack: the only module that imports slack_sdk.

Two ways in: a bot token (``chat.postMessage``; threads, the answer carries the message's
``channel`` and ``ts``) or an incoming webhook (one fixed channel, no threads, no ``ts``).
Every failure comes out as ``SlackError``; when Slack answered 429 it carries ``retry_after``.

A 429 is not retried inside the request: the SDK's ``RateLimitErrorRetryHandler`` would sleep
for Retry-After in this process, blocking the watch loop that delivers. The outbox
(``monitoring.alerts.delivery``) schedules the retry at Retry-After instead. Connection errors get
the SDK's one quick retry (passing ``retry_handlers`` replaces the defaults, so it is listed).

The token and the webhook URL (a secret too) never appear in errors, reprs or logs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any, Protocol

from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, FixedValueRetryIntervalCalculator

from monitoring.settings import Settings

TIMEOUT_SECONDS = 5  # per request; a hanging Slack costs a delivery run at most ~2x this


def _retry_handlers() -> list[ConnectionErrorRetryHandler]:
    # one quick retry for a dropped connection; 429 is left to the outbox (see above)
    return [ConnectionErrorRetryHandler(max_retry_count=1,
                                        interval_calculator=FixedValueRetryIntervalCalculator(0.25))]

# Slack refused this message itself (its content); other messages would still go through.
MESSAGE_ERRORS = frozenset({
    "invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long", "no_text",
    "invalid_attachments", "too_many_attachments", "invalid_payload",
})


class SlackError(Exception):
    """Slack did not take the message.

    ``retry_after``: seconds Slack asked us to wait (429), else None. ``rejected``: Slack refused
    this message's content (other messages may still be deliverable); False means Slack or its
    configuration is unavailable for every message (down, 5xx, rate limit, bad token, channel).
    """

    def __init__(self, message: str, *, retry_after: float | None = None, rejected: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.rejected = rejected


@dataclass(frozen=True)
class Posted:
    """Where Slack put a message (both None for a webhook, which answers only "ok")."""

    channel: str | None
    ts: str | None


class SlackSender(Protocol):
    threads: bool  # can reply in a thread and tell us the message's ts

    def post(
        self,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None,
        channel: str | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> Posted: ...


def _retry_after(headers: dict[str, Any] | None) -> float | None:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def _error_from_status(status: int, error: str, headers: dict[str, Any] | None) -> SlackError:
    if status == 429:
        return SlackError("rate limited by Slack (HTTP 429)", retry_after=_retry_after(headers) or 1.0)
    return SlackError(f"Slack answered {error or 'an error'} (HTTP {status})"[:300],
                      rejected=error in MESSAGE_ERRORS)


def _transport_error(error: Exception) -> SlackError:
    reason = getattr(error, "reason", None) or error  # URLError wraps the socket error
    return SlackError(f"cannot reach Slack: {type(error).__name__}: {reason}"[:300])


class BotSender:
    """chat.postMessage with a bot token, to ``channel`` unless a post names another."""

    threads = True

    def __init__(self, token: str, channel: str, *, base_url: str | None = None,
                 timeout: float = TIMEOUT_SECONDS):
        if not token:
            raise ValueError("a Slack bot token is required")
        if not channel:
            raise ValueError("a Slack channel is required")
        self.channel = channel
        self._client = WebClient(
            token=token,
            base_url=base_url or WebClient.BASE_URL,
            timeout=int(timeout),
            retry_handlers=_retry_handlers(),
        )

    def __repr__(self) -> str:
        return f"BotSender(channel={self.channel!r})"

    def post(self, *, text, blocks, channel=None, thread_ts=None, broadcast=False) -> Posted:
        arguments: dict[str, Any] = {"channel": channel or self.channel, "text": text}
        if blocks:
            arguments["blocks"] = blocks
        if thread_ts:
            arguments["thread_ts"] = thread_ts
            arguments["reply_broadcast"] = broadcast
        try:
            response = self._client.chat_postMessage(**arguments)
        except SlackApiError as error:
            data = error.response.data if isinstance(error.response.data, dict) else {}
            raise _error_from_status(
                error.response.status_code, str(data.get("error", "unknown_error")), error.response.headers
            ) from None
        except (SlackClientError, OSError, HTTPException, ValueError) as error:
            raise _transport_error(error) from None
        return Posted(channel=response.get("channel"), ts=response.get("ts"))


class WebhookSender:
    """An incoming webhook: always its own channel, no threads."""

    threads = False

    def __init__(self, url: str, *, timeout: float = TIMEOUT_SECONDS):
        if not url.startswith(("https://", "http://")):
            raise ValueError("the Slack webhook URL must be an http(s) URL")
        # The SDK logs the URL (a secret) at DEBUG, and at INFO when retrying: keep it quiet.
        quiet = logging.getLogger(f"{__name__}.webhook")
        quiet.setLevel(logging.WARNING)
        self._client = WebhookClient(
            url, timeout=int(timeout), logger=quiet,
            retry_handlers=_retry_handlers(),
        )

    def __repr__(self) -> str:
        return "WebhookSender(url=<secret>)"

    def post(self, *, text, blocks, channel=None, thread_ts=None, broadcast=False) -> Posted:
        try:
            response = self._client.send(text=text, blocks=blocks or None)
        except (SlackClientError, OSError, HTTPException, ValueError) as error:
            raise _transport_error(error) from None
        if response.status_code != 200:
            raise _error_from_status(response.status_code, response.body or "", response.headers)
        return Posted(channel=None, ts=None)


def sender_from_settings(settings: Settings) -> SlackSender | None:
    """The sender the settings ask for (a bot token wins over a webhook), or None: Slack is off."""
    if settings.slack_bot_token is not None:
        return BotSender(settings.slack_bot_token.get_secret_value(), settings.slack_channel,
                         base_url=settings.slack_base_url)
    if settings.slack_webhook_url is not None:
        return WebhookSender(settings.slack_webhook_url.get_secret_value())
    return None
