"""The SMTP Mailer against a real SMTP server in the test process (aiosmtpd): delivery and refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.emails import EmailMessage, MailUndeliverable
from domain.errors import ServiceUnavailable
from infrastructure.mail.mime import sender_address
from infrastructure.mail.smtp import SmtpMailer, SmtpServer
from tests.fixtures.redis_server import free_port
from tests.fixtures.smtp import InProcessSmtp

SENDER = sender_address("noreply@genhub.example", "genhub")
RESET = EmailMessage(
    to="ada@example.com",
    subject="Reset your genhub password",
    text="Open http://127.0.0.1:8000/reset?token=abc within 30 minutes.",
    html='<p>Open <a href="http://127.0.0.1:8000/reset?token=abc">this link</a>.</p>',
)

StartSmtp = Callable[..., InProcessSmtp]


def mailer_for(port: int, *, timeout: float = 5.0) -> SmtpMailer:
    return SmtpMailer(SmtpServer("127.0.0.1", port, "none", "", "", timeout), sender=SENDER)


async def test_a_message_arrives_as_text_and_html_with_its_headers(smtp_server: StartSmtp) -> None:
    # given a server that accepts mail
    server = smtp_server()
    # when the mailer sends the reset message
    await mailer_for(server.port).send(RESET)
    # then one message arrived, for that recipient only, parsing back with our headers and both bodies
    [received] = server.received
    assert received.mail_from == "noreply@genhub.example"
    assert received.rcpt_tos == ["ada@example.com"]
    parsed = received.parsed
    assert parsed["From"] == "genhub <noreply@genhub.example>"
    assert parsed["To"] == "ada@example.com"
    assert parsed["Subject"] == RESET.subject
    assert parsed["Date"] is not None and parsed["Message-ID"] is not None
    assert parsed.get_content_type() == "multipart/alternative"
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    assert text_part is not None and "token=abc" in text_part.get_content()
    assert html_part is not None and 'href="http://127.0.0.1:8000/reset?token=abc"' in html_part.get_content()


async def test_a_recipient_refused_with_550_is_undeliverable(smtp_server: StartSmtp) -> None:
    server = smtp_server(mode="refuse")
    with pytest.raises(MailUndeliverable, match="550"):
        await mailer_for(server.port).send(RESET)
    assert server.handler.refused == ["ada@example.com"] and server.received == []


async def test_421_is_unavailable_then_delivered_once_the_server_takes_mail(smtp_server: StartSmtp) -> None:
    # given a server that answers "try again later"
    server = smtp_server(mode="later")
    mailer = mailer_for(server.port)
    with pytest.raises(ServiceUnavailable):
        await mailer.send(RESET)
    assert server.received == []
    # when it takes mail again, the same message goes through
    server.set_mode("accept")
    await mailer.send(RESET)
    assert [r.rcpt_tos for r in server.received] == [["ada@example.com"]]


async def test_no_server_is_unavailable_then_delivered_when_one_listens(smtp_server: StartSmtp) -> None:
    # given nothing listening on the port
    port = free_port()
    mailer = mailer_for(port)
    with pytest.raises(ServiceUnavailable) as refused:
        await mailer.send(RESET)
    assert refused.value.dependency == "smtp"
    # when a server comes up there, the message is delivered
    server = smtp_server(port=port)
    await mailer.send(RESET)
    assert len(server.received) == 1


async def test_a_list_of_recipients_is_never_sent(smtp_server: StartSmtp) -> None:
    server = smtp_server()
    with pytest.raises(MailUndeliverable):
        await mailer_for(server.port).send(EmailMessage(to="ada@example.com,eve@example.com", subject="s", text="t"))
    assert server.received == [] and server.handler.refused == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    local=st.text(alphabet=st.sampled_from(list("ab.+_-,;:<>\"' \\@")), min_size=1, max_size=20),
    subject=st.text(max_size=80),
)
async def test_hostile_recipients_reach_only_themselves(smtp_server: StartSmtp, local: str, subject: str) -> None:
    # given one server (started once per example, on a fresh port)
    server = smtp_server()
    try:
        message = EmailMessage(to=f"{local}@example.com", subject=subject, text="body")
    except ValueError:
        return
    # when the mailer sends to a hostile address
    try:
        await mailer_for(server.port).send(message)
    except MailUndeliverable:
        assert server.received == []
        return
    # then the server saw exactly that one recipient, in the envelope and the To header
    [received] = server.received
    assert received.rcpt_tos == [message.to]
    assert [a.addr_spec for a in received.parsed["To"].addresses] == [message.to]
    assert received.parsed.get_all("Bcc") is None and received.parsed.get_all("Cc") is None
