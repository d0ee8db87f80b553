"""The embedded default's Mailer: each message is written to a local outbox directory, not sent.

One `.eml` file per message (readable only by its owner) in `DATA_DIR/outbox`, named for
the time it was written and a random suffix, so listing the directory lists the mail in
the order it was "sent". `genhub outbox` (entrypoints/outbox_command.py) and the
development page /dev/outbox (graph/dev_outbox.py) read them back. The log gets one line
per message (recipient, subject, file), never the body.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.headerregistry import Address
from pathlib import Path

from domain.emails import EmailMessage
from infrastructure.mail.mime import compose

log = logging.getLogger("genhub.mail")

SUFFIX = ".eml"
#: What an outbox id looks like; nothing else ever becomes a path.
ID_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{12}Z-[0-9a-f]{12}$")
LATEST = "latest"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: str
    to: str
    subject: str
    date: str


class Outbox:
    """The outbox directory: write one message, list them, read one back."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, raw: bytes) -> str:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        entry_id = f"{stamp}-{secrets.token_hex(6)}"
        fd = os.open(self.directory / f"{entry_id}{SUFFIX}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
        return entry_id

    def ids(self) -> list[str]:
        """Every message's id, oldest first."""
        if not self.directory.is_dir():
            return []
        found = (p.name[: -len(SUFFIX)] for p in self.directory.iterdir() if p.name.endswith(SUFFIX))
        return sorted(i for i in found if ID_PATTERN.match(i))

    def resolve(self, entry_id: str) -> str | None:
        """`entry_id` itself when it names a message here, the newest one's for "latest", else None."""
        if entry_id == LATEST:
            ids = self.ids()
            return ids[-1] if ids else None
        if not ID_PATTERN.match(entry_id) or not (self.directory / f"{entry_id}{SUFFIX}").is_file():
            return None
        return entry_id

    def read(self, entry_id: str) -> bytes | None:
        """The raw message `entry_id` (or "latest") names, or None."""
        found = self.resolve(entry_id)
        return None if found is None else (self.directory / f"{found}{SUFFIX}").read_bytes()

    def entries(self) -> list[OutboxEntry]:
        listed: list[OutboxEntry] = []
        for entry_id in self.ids():
            raw = (self.directory / f"{entry_id}{SUFFIX}").read_bytes()
            parsed = message_from_bytes(raw, policy=email_policy.default)
            listed.append(
                OutboxEntry(entry_id, str(parsed["To"] or ""), str(parsed["Subject"] or ""), str(parsed["Date"] or ""))
            )
        return listed


class OutboxMailer:
    """Mailer port for the embedded default: the message goes to the outbox."""

    def __init__(self, outbox: Outbox, *, sender: Address) -> None:
        self.outbox = outbox
        self.sender = sender

    async def send(self, message: EmailMessage) -> None:
        raw = compose(message, sender=self.sender).as_bytes()
        entry_id = await asyncio.to_thread(self.outbox.write, raw)
        log.info(
            "mail to %s, subject %r: written to the outbox (%s)",
            message.to,
            message.subject,
            self.outbox.directory / f"{entry_id}{SUFFIX}",
        )
