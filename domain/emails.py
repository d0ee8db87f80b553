"""E-mail as the product sends it: one message, and the task that delivers it.

Messages are composed by use cases (a password reset, a data export being ready) and
queued as `SEND_EMAIL_TASK` with the message's fields as arguments (`as_task_args` /
`from_task_args`); a worker delivers them through the `Mailer` port (domain/ports.py),
never the request that composed them. Nothing here knows how mail travels.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SEND_EMAIL_TASK = "send_email"

#: Bounds on what a message may hold (headers never carry a line break).
MAX_SUBJECT = 200
MAX_BODY = 100_000


class MailUndeliverable(Exception):
    """The mail server refused the message for good (a bad address): retrying will not help."""


@dataclass(frozen=True, slots=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str | None = None

    def __post_init__(self) -> None:
        for name, value in (("to", self.to), ("subject", self.subject)):
            if "\r" in value or "\n" in value:
                raise ValueError(f"an e-mail's {name} must be one line")
        if len(self.subject) > MAX_SUBJECT:
            raise ValueError("the subject is too long")
        if len(self.text) > MAX_BODY or (self.html is not None and len(self.html) > MAX_BODY):
            raise ValueError("the body is too long")

    def as_task_args(self) -> dict[str, Any]:
        return {"to": self.to, "subject": self.subject, "text": self.text, "html": self.html}

    @classmethod
    def from_task_args(cls, args: dict[str, Any]) -> EmailMessage:
        html = args.get("html")
        return cls(
            to=str(args["to"]),
            subject=str(args["subject"]),
            text=str(args["text"]),
            html=None if html is None else str(html),
        )


class QueuedState:
    """Where a recorded message stands (outbound_emails.status)."""

    PENDING = "pending"
    SENT = "sent"
    UNDELIVERABLE = "undeliverable"  # refused for good: never tried again
    FAILED = "failed"  # the server could not take it before the message's time ran out


@dataclass(frozen=True, slots=True)
class QueuedEmail:
    """A recorded message claimed by a worker for one attempt (`attempts` counts this one)."""

    id: uuid.UUID
    message: EmailMessage
    attempts: int
    give_up_at: datetime
