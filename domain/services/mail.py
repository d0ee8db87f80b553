"""Mail: what the workers run to deliver the product's e-mail."""

from __future__ import annotations

from dataclasses import dataclass

from domain.emails import EmailMessage
from domain.ports import Mailer
from domain.use_cases import mail
from domain.use_cases.mail import Delivery


@dataclass(frozen=True, slots=True)
class Mail:
    mailer: Mailer

    async def deliver(self, message: EmailMessage) -> Delivery:
        return await mail.deliver(message, mailer=self.mailer)
