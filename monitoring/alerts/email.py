"""The e-mail route: one plain-text mail per outbox message over SMTP (the only smtplib user).

The subject is ``[Vigil] <severity> <model>: <title>``; the body is the message as plain text
(``messages.render_plain``). ``Message-ID`` is derived from the outbox message, so a re-send after
a crash carries the same id and a mail client shows it once. With ``starttls`` (the default) the
connection is upgraded before logging in; the password comes from the environment variable the
route names and never appears in an error.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import format_datetime

from monitoring.alerts.messages import render_plain
from monitoring.alerts.route_http import RouteError
from monitoring.alerts.routes import EmailRoute, secret
from monitoring.store.route_deliveries import RoutedMessage


def mail(route: EmailRoute, message: RoutedMessage) -> EmailMessage:
    """The mail for one message."""
    payload = message.payload
    mail_message = EmailMessage()
    mail_message["Subject"] = (f"[Vigil] {payload.get('severity', 'info')} {message.model_name}: "
                               f"{payload.get('title', message.kind)}")
    mail_message["From"] = route.from_address
    mail_message["To"] = ", ".join(route.to)
    mail_message["Date"] = format_datetime(message.created_at)
    mail_message["Message-ID"] = f"<vigil-{message.message_id}@{route.from_address.split('@')[1]}>"
    mail_message["X-Vigil-Kind"] = message.kind
    mail_message.set_content(render_plain(payload, model_name=message.model_name, kind=message.kind))
    return mail_message


def send(route: EmailRoute, message: RoutedMessage) -> None:
    """Hand one mail to the SMTP server; ``RouteError`` if it did not take it."""
    password = secret(route.password_env) if route.password_env else None
    try:
        with smtplib.SMTP(route.host, route.port, timeout=route.timeout_seconds) as smtp:
            if route.starttls:
                smtp.starttls()
            if route.username and password:
                smtp.login(route.username, password)
            smtp.send_message(mail(route, message))
    except (smtplib.SMTPException, OSError) as error:
        raise RouteError(f"SMTP {route.host}:{route.port}: {type(error).__name__}") from None
