"""Outgoing e-mail: SMTP when configured, the log otherwise (embedded mode).

Mail is sent after the command that asks for it has committed, and not again when
an idempotent retry replays that command: a lost mail can be asked for again, a
mail about something that did not happen cannot be taken back.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from typing import Protocol

log = logging.getLogger("trafi.api.mail")


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


class SmtpMailer:
    def __init__(self, host: str, port: int, sender: str, *, timeout_s: float = 10.0):
        self.host, self.port, self.sender, self.timeout_s = host, port, sender, timeout_s

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            smtp.send_message(message)


class LogMailer:
    def send(self, to: str, subject: str, body: str) -> None:
        log.info("mail (no SMTP configured)", extra={"to": to, "subject": subject, "body": body})


def send_safely(mailer: Mailer, to: str, subject: str, body: str) -> bool:
    """Send, and log rather than fail the request when the mail server is down: the write already happened."""
    try:
        mailer.send(to, subject, body)
        return True
    except (OSError, smtplib.SMTPException) as error:
        log.error("could not send mail: %s", error, extra={"subject": subject})
        return False
