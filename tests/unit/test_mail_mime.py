"""The MIME message of a domain EmailMessage: its headers, and hostile subjects and addresses (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.headerregistry import Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.emails import EmailMessage, MailUndeliverable
from infrastructure.mail.mime import compose, one_line, sender_address

SENDER = sender_address("noreply@genhub.example", "genhub")
#: Every header a composed message may carry, top level.
HEADERS = {"from", "to", "subject", "date", "message-id", "mime-version", "content-type", "content-transfer-encoding"}


def parse(raw: bytes) -> object:
    return message_from_bytes(raw, policy=policy.default)


def test_a_message_with_html_is_text_and_html_alternatives() -> None:
    # given a message with both bodies
    message = EmailMessage(to="ada@example.com", subject="Reset your password", text="plain body", html="<p>html</p>")
    # when composed
    raw = compose(message, sender=SENDER, now=datetime(2026, 12, 5, 10, 0, tzinfo=UTC)).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    # then it parses back with the headers and both parts
    assert parsed["From"] == "genhub <noreply@genhub.example>"
    assert parsed["To"] == "ada@example.com"
    assert parsed["Subject"] == "Reset your password"
    assert parsed["Date"] == "Sat, 05 Dec 2026 10:00:00 +0000"
    assert parsed["Message-ID"].endswith("@genhub.example>")
    assert parsed.get_content_type() == "multipart/alternative"
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    assert text_part is not None and text_part.get_content().strip() == "plain body"
    assert html_part is not None and html_part.get_content().strip() == "<p>html</p>"


def test_a_text_only_message_is_one_part() -> None:
    raw = compose(EmailMessage(to="ada@example.com", subject="s", text="only text"), sender=SENDER).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content().strip() == "only text"


@pytest.mark.parametrize(
    "to",
    [
        "ada@example.com, eve@example.com",
        "Eve <eve@example.com>",
        "ada@example.com\x0bBcc: eve@example.com",
        "ada@example.com\u2028Bcc: eve@example.com",
        "undisclosed-recipients:;",
        "no-at-sign",
        "",
    ],
)
def test_anything_but_one_plain_address_is_undeliverable(to: str) -> None:
    with pytest.raises(MailUndeliverable):
        compose(EmailMessage(to=to, subject="s", text="t"), sender=SENDER)


def test_unicode_line_separators_in_a_subject_become_spaces() -> None:
    subject = "hello\u2028Bcc: eve@example.com\x85X-Evil: 1\x0bY: 2"
    raw = compose(EmailMessage(to="ada@example.com", subject=subject, text="t"), sender=SENDER).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert {k.lower() for k in parsed} <= HEADERS
    assert parsed["Subject"] == one_line(subject)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None


hostile_text = st.text(
    alphabet=st.sampled_from(
        list("abc@.<>,;:\"' \t\\()[]=?") + ["\r", "\n", "\x00", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "é", "😀"]
    )
    | st.characters(),
    max_size=120,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=hostile_text, local=hostile_text, tail=hostile_text)
def test_hostile_subjects_and_addresses_never_add_a_header_or_a_recipient(subject: str, local: str, tail: str) -> None:
    # given a message whose subject and recipient are made of hostile characters
    to = f"{local}@example.com{tail}"
    try:
        message = EmailMessage(to=to, subject=subject, text="body")
    except ValueError:
        return  # the domain refuses line breaks and overlong subjects before anything is composed
    # when composed
    try:
        mime = compose(message, sender=SENDER)
    except MailUndeliverable:
        return  # not one plain address: never sent
    parsed = message_from_bytes(mime.as_bytes(), policy=policy.default)
    # then the headers are exactly ours, with one recipient: the given one
    assert {k.lower() for k in parsed} <= HEADERS
    assert len(parsed.get_all("To") or []) == 1
    addresses = parsed["To"].addresses
    assert len(addresses) == 1 and addresses[0].addr_spec == to
    assert " ".join(str(parsed["Subject"]).split()) == " ".join(one_line(subject).split())
    assert Address(addr_spec=to).addr_spec == to
