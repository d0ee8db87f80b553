"""The Mailer over SMTP (aiosmtplib): one connection per message, from a worker task.

Refusals are sorted by who can fix them:
- the recipient or the content refused for good (5xx to RCPT or DATA): `MailUndeliverable`,
  and the task gives up on that message;
- anything else (no connection, a timeout, a 4xx "try later" such as 421, a refused login
  or sender, which the operator can fix): `ServiceUnavailable("smtp")`, and the task tries
  again later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.headerregistry import Address
from typing import Literal

import aiosmtplib

from domain.emails import EmailMessage, MailUndeliverable
from domain.errors import ServiceUnavailable
from infrastructure.mail.mime import compose

log = logging.getLogger("genhub.mail")

SMTP = "smtp"
TlsMode = Literal["none", "starttls", "tls"]


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    tls: TlsMode
    username: str
    password: str
    timeout_seconds: float


def _permanent(code: int) -> bool:
    return 500 <= code < 600


class SmtpMailer:
    """Mailer port: `send` hands the message to the configured SMTP server for one recipient."""

    def __init__(self, server: SmtpServer, *, sender: Address) -> None:
        self.server = server
        self.sender = sender

    async def send(self, message: EmailMessage) -> None:
        mime = compose(message, sender=self.sender)
        s = self.server
        try:
            await aiosmtplib.send(
                mime,
                # The envelope is stated here, never read from the headers.
                sender=self.sender.addr_spec,
                recipients=[message.to],
                hostname=s.host,
                port=s.port,
                username=s.username or None,
                password=s.password or None,
                use_tls=s.tls == "tls",
                start_tls=s.tls == "starttls",
                timeout=s.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            if codes and all(_permanent(code) for code in codes):
                raise MailUndeliverable(f"the server refused the recipient ({codes[0]})") from exc
            raise ServiceUnavailable(SMTP) from exc
        except aiosmtplib.SMTPDataError as exc:
            if _permanent(exc.code):
                raise MailUndeliverable(f"the server refused the message ({exc.code})") from exc
            raise ServiceUnavailable(SMTP) from exc
        except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPAuthenticationError, aiosmtplib.SMTPNotSupported) as exc:
            # The operator's configuration, not this message: logged loudly, retried.
            log.error("SMTP server %s:%d refused our sender or login: %s", s.host, s.port, exc)
            raise ServiceUnavailable(SMTP) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:  # connection, timeout, 4xx, a dropped line
            raise ServiceUnavailable(SMTP) from exc
