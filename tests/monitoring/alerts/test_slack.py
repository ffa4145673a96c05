"""The Slack sender over real HTTP against the fake Slack: posting, threads, errors, secrets."""

from __future__ import annotations

import logging

import pytest

from monitoring.alerts.slack import BotSender, SlackError, WebhookSender, sender_from_settings
from monitoring.settings import Settings
from tests.fakes.fake_slack import fake_slack_fixture  # noqa: F401 - the "fake_slack" fixture

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hello*"}}]


def test_bot_posts_with_token_and_returns_channel_and_ts(fake_slack):
    sender = BotSender(fake_slack.token, "#oncall", base_url=fake_slack.base_url)

    posted = sender.post(text="hello", blocks=BLOCKS)
    reply = sender.post(text="reply", blocks=None, channel=posted.channel, thread_ts=posted.ts, broadcast=True)

    assert posted.channel == "C0VIGIL01" and posted.ts and reply.ts != posted.ts
    first, second = fake_slack.requests
    assert first.path == "/api/chat.postMessage"
    assert first.headers["authorization"] == f"Bearer {fake_slack.token}"
    assert first.body == {"channel": "#oncall", "text": "hello", "blocks": BLOCKS}
    assert second.body == {"channel": "C0VIGIL01", "text": "reply", "thread_ts": posted.ts,
                           "reply_broadcast": True}


def test_rate_limit_carries_retry_after_and_is_not_retried_in_the_request(fake_slack):
    sender = BotSender(fake_slack.token, "#oncall", base_url=fake_slack.base_url)
    fake_slack.rate_limit(retry_after=17)

    with pytest.raises(SlackError) as raised:
        sender.post(text="hello", blocks=BLOCKS)

    assert raised.value.retry_after == 17 and not raised.value.rejected
    assert [r.status for r in fake_slack.requests] == [429]


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_queue_level_errors(fake_slack, status):
    fake_slack.fail(status)
    with pytest.raises(SlackError, match=f"HTTP {status}") as raised:
        BotSender(fake_slack.token, "#oncall", base_url=fake_slack.base_url).post(text="x", blocks=None)
    assert raised.value.retry_after is None and not raised.value.rejected


def test_refused_blocks_are_a_rejection_of_this_message(fake_slack):
    fake_slack.reject_blocks = True
    with pytest.raises(SlackError, match="invalid_blocks") as raised:
        BotSender(fake_slack.token, "#oncall", base_url=fake_slack.base_url).post(text="x", blocks=BLOCKS)
    assert raised.value.rejected


def test_wrong_token_fails_without_showing_the_token(fake_slack, caplog):
    caplog.set_level(logging.DEBUG)
    sender = BotSender("xoxb-wrong-secret", "#oncall", base_url=fake_slack.base_url)
    with pytest.raises(SlackError, match="invalid_auth") as raised:
        sender.post(text="x", blocks=None)
    assert not raised.value.rejected
    assert "xoxb-wrong-secret" not in str(raised.value) + repr(sender) + caplog.text


def test_slack_down_is_a_slack_error(fake_slack):
    sender = BotSender(fake_slack.token, "#oncall", base_url=fake_slack.base_url)
    fake_slack.down()
    with pytest.raises(SlackError, match="cannot reach Slack") as raised:
        sender.post(text="x", blocks=None)
    assert raised.value.retry_after is None and not raised.value.rejected


def test_webhook_posts_without_thread_and_keeps_its_url_secret(fake_slack, caplog):
    caplog.set_level(logging.DEBUG)
    sender = WebhookSender(fake_slack.webhook_url)

    posted = sender.post(text="hello", blocks=BLOCKS, thread_ts="123.456")
    fake_slack.rate_limit(retry_after=3)
    with pytest.raises(SlackError) as limited:
        sender.post(text="again", blocks=None)
    fake_slack.down()
    with pytest.raises(SlackError) as down:
        sender.post(text="down", blocks=None)

    assert posted.ts is None and posted.channel is None
    assert fake_slack.requests[0].body == {"text": "hello", "blocks": BLOCKS}
    assert limited.value.retry_after == 3
    secret = "webhooksecret"
    assert secret not in str(limited.value) + str(down.value) + repr(sender) + caplog.text


def test_webhook_refused_blocks_are_a_rejection(fake_slack):
    fake_slack.reject_blocks = True
    with pytest.raises(SlackError, match="invalid_blocks") as raised:
        WebhookSender(fake_slack.webhook_url).post(text="x", blocks=BLOCKS)
    assert raised.value.rejected


def test_sender_from_settings_prefers_the_bot_token_and_is_none_when_off(fake_slack):
    both = Settings(slack_bot_token=fake_slack.token, slack_webhook_url=fake_slack.webhook_url,
                    slack_base_url=fake_slack.base_url, slack_channel="#ops")
    webhook = Settings(slack_bot_token=None, slack_webhook_url=fake_slack.webhook_url)
    off = Settings(slack_bot_token=None, slack_webhook_url=None)

    assert isinstance(sender_from_settings(both), BotSender)
    assert sender_from_settings(both).channel == "#ops"
    assert isinstance(sender_from_settings(webhook), WebhookSender)
    assert sender_from_settings(off) is None


def test_bad_configuration_is_refused_up_front():
    with pytest.raises(ValueError, match="token"):
        BotSender("", "#oncall")
    with pytest.raises(ValueError, match="channel"):
        BotSender("xoxb-1", "")
    with pytest.raises(ValueError, match="http"):
        WebhookSender("hooks.slack.com/services/x")
