"""The process's Mailer from its Settings: SMTP when SMTP_HOST is set, else the local outbox."""

from __future__ import annotations

from domain.ports import Mailer
from infrastructure.mail.mime import sender_address
from infrastructure.mail.outbox import Outbox, OutboxMailer
from infrastructure.mail.smtp import SmtpMailer, SmtpServer
from infrastructure.settings import Settings


def outbox_of(settings: Settings) -> Outbox:
    return Outbox(settings.data_dir / "outbox")


def build_mailer(settings: Settings) -> Mailer:
    sender = sender_address(settings.effective_mail_from, settings.mail_from_name)
    if not settings.smtp_host:
        return OutboxMailer(outbox_of(settings), sender=sender)
    server = SmtpServer(
        host=settings.smtp_host,
        port=settings.effective_smtp_port,
        tls=settings.smtp_tls,
        username=settings.smtp_username,
        password=settings.smtp_password,
        timeout_seconds=settings.smtp_timeout_seconds,
    )
    return SmtpMailer(server, sender=sender)
