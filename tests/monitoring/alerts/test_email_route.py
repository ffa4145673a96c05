"""The e-mail route against a real local SMTP server (aiosmtpd): the mail arrives, once."""

from __future__ import annotations

import email
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

from monitoring.alerts.route_delivery import deliver_routes
from monitoring.alerts.routes import EmailRoute
from monitoring.store import outbox
from monitoring.store.engine import session_scope, utcnow
from tests.net import free_port


class _Inbox:
    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's API
        self.mails.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def _route(port: int) -> EmailRoute:
    return EmailRoute(name="mail", kind="email", host="127.0.0.1", port=port, starttls=False,
                      from_address="vigil@example.com", to=("oncall@example.com",))


def test_a_message_arrives_as_one_mail(store_url, smtp_server):
    inbox, port = smtp_server
    with session_scope(store_url) as session:
        message_id = outbox.enqueue(session, model_name="churn", kind="rollback",
                                    title="rolled back to v3", severity="critical",
                                    facts={"f1": 0.52}).id
    (report,) = deliver_routes(store_url, (_route(port),))
    deliver_routes(store_url, (_route(port),), now=utcnow() + timedelta(minutes=5))
    assert report.delivered == 1 and len(inbox.mails) == 1
    recipients, mail = inbox.mails[0]
    assert recipients == ["oncall@example.com"]
    assert mail["Subject"] == "[Vigil] critical churn: rolled back to v3"
    assert mail["Message-ID"] == f"<vigil-{message_id}@example.com>"
    assert "0.52" in mail.get_payload()


def test_an_unreachable_smtp_server_is_retried_later(store_url):
    with session_scope(store_url) as session:
        outbox.enqueue(session, model_name="churn", kind="rollback", title="t")
    (report,) = deliver_routes(store_url, (_route(free_port()),))
    assert (report.failed, report.pending) == (1, 1)
