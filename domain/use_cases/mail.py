"""Delivering the product's e-mail from a worker: one message through the Mailer port.

A message the server refuses for good (`MailUndeliverable`: a bad address) is logged once
and dropped; retrying would not help. A server that cannot be reached or says "later"
(`ServiceUnavailable`) leaves the error to the caller, which tries again.
"""

from __future__ import annotations

import enum
import logging

from domain.emails import EmailMessage, MailUndeliverable
from domain.ports import Mailer

log = logging.getLogger("genhub.mail")


class Delivery(enum.StrEnum):
    SENT = "sent"
    UNDELIVERABLE = "undeliverable"


async def deliver(message: EmailMessage, *, mailer: Mailer) -> Delivery:
    """Send `message`; SENT, or UNDELIVERABLE when refused for good. Raises ServiceUnavailable."""
    try:
        await mailer.send(message)
    except MailUndeliverable as exc:
        log.warning("mail to %s refused for good, not retried: %s", message.to, exc)
        return Delivery.UNDELIVERABLE
    return Delivery.SENT
