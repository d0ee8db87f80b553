"""One domain EmailMessage as an RFC 5322 message: text with an optional HTML alternative.

The stdlib's `email.message.EmailMessage` under the SMTP policy writes the headers (it
refuses line breaks in a value itself); on top of that the subject loses every control
and line-separator character, and the recipient must be exactly one plain address
(a display name, a list or a group would put more on the line than the one recipient).
The SMTP envelope names the recipient separately (smtp.py), so no header ever picks one.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from domain.emails import EmailMessage, MailUndeliverable

#: Unicode categories that must not reach a header: controls, formats, line/paragraph separators,
#: and lone surrogates (not encodable).
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def one_line(value: str) -> str:
    """`value` with every control, format or line-separator character turned into a space."""
    return "".join(" " if unicodedata.category(ch) in _UNSAFE else ch for ch in value)


def recipient(to: str) -> Address:
    """The one plain address `to` names; MailUndeliverable for anything else (no retry makes it valid).

    Printable ASCII only: international addresses (SMTPUTF8) are not supported.
    """
    if not all(" " < ch < "\x7f" for ch in to):
        raise MailUndeliverable(f"not a single e-mail address: {to!r}")
    try:
        address = Address(addr_spec=to)
    except (ValueError, TypeError, IndexError, MessageError) as exc:  # what the stdlib's parser raises
        raise MailUndeliverable(f"not a single e-mail address: {to!r}") from exc
    if not address.username or not address.domain or address.addr_spec != to:
        raise MailUndeliverable(f"not a single e-mail address: {to!r}")
    return address


def sender_address(address: str, display_name: str) -> Address:
    """MAIL_FROM with its display name (settings already checked the address)."""
    username, _, domain = address.rpartition("@")
    return Address(display_name=one_line(display_name), username=username, domain=domain)


def compose(message: EmailMessage, *, sender: Address, now: datetime | None = None) -> MimeMessage:
    """The MIME message for `message` from `sender`: From, To, Subject, Date, Message-ID."""
    to = recipient(message.to)
    mime = MimeMessage(policy=SMTP)
    mime["From"] = sender
    mime["To"] = to
    mime["Subject"] = one_line(message.subject)
    mime["Date"] = format_datetime(now or datetime.now(UTC))
    mime["Message-ID"] = make_msgid(domain=sender.domain or None)
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    return mime
