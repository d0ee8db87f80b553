"""Mail: what the workers run to deliver the product's e-mail (domain/use_cases/mail.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.emails import EmailMessage
from domain.use_cases import mail
from domain.use_cases.mail import Delivery, MailPolicy, MailPorts


@dataclass(frozen=True, slots=True)
class Mail:
    ports: MailPorts
    policy: MailPolicy

    async def send(self, key: str, message: EmailMessage) -> Delivery:
        """Record `message` under `key` (once, however often the task is delivered) and try to send it."""
        return await mail.send_email(key, message, ports=self.ports, policy=self.policy)

    async def send_queued(self, email_id: uuid.UUID) -> Delivery:
        return await mail.send_queued(email_id, ports=self.ports, policy=self.policy)

    async def send_due(self) -> int:
        return await mail.send_due(ports=self.ports, policy=self.policy)
