"""Production start-up refuses a missing, default or short JWT secret (or a short metrics token or URL signing
secret), naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from entrypoints.api import create_app
from infrastructure.settings import (
    DEV_JWT_SECRET,
    MIN_JWT_SECRET_LENGTH,
    MIN_METRICS_TOKEN_LENGTH,
    MIN_URL_SIGNING_SECRET_LENGTH,
    Settings,
)

GOOD_SECRET = "s" * MIN_JWT_SECRET_LENGTH


def production(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "production",
        "database_url": "postgresql+asyncpg://genhub@db/genhub",
        "redis_url": "redis://redis:6379/0",
        "local_storage_path": tmp_path,
        "jwt_secret": GOOD_SECRET,
        "smtp_host": "smtp.example.com",
        "mail_from": "noreply@genhub.example",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("", "JWT_SECRET must be set"),
        (DEV_JWT_SECRET, "JWT_SECRET must be set"),
        ("s" * (MIN_JWT_SECRET_LENGTH - 1), f"JWT_SECRET must be at least {MIN_JWT_SECRET_LENGTH} characters"),
    ],
)
def test_production_refuses_a_weak_jwt_secret(tmp_path: Path, secret: str, message: str) -> None:
    settings = production(tmp_path, jwt_secret=secret)
    assert message in settings.production_problems()
    with pytest.raises(RuntimeError, match="refuses to start in production") as refused:
        create_app(settings)
    assert message in str(refused.value)


def test_production_starts_with_a_long_secret(tmp_path: Path) -> None:
    settings = production(tmp_path)
    assert settings.production_problems() == []
    create_app(settings)  # builds without opening anything


def test_production_refuses_a_short_metrics_token(tmp_path: Path) -> None:
    short = production(tmp_path, metrics_token="m" * (MIN_METRICS_TOKEN_LENGTH - 1))
    assert short.production_problems() == [
        f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters (or empty)"
    ]
    assert production(tmp_path, metrics_token="m" * MIN_METRICS_TOKEN_LENGTH).production_problems() == []


def test_production_refuses_a_short_url_signing_secret(tmp_path: Path) -> None:
    # given URL_SIGNING_SECRET set one character short: it keys reset tokens and signed links
    short = production(tmp_path, url_signing_secret="u" * (MIN_URL_SIGNING_SECRET_LENGTH - 1))
    # then production refuses it, naming it; long enough, or unset (derived from JWT_SECRET), starts
    assert short.production_problems() == [
        f"URL_SIGNING_SECRET must be at least {MIN_URL_SIGNING_SECRET_LENGTH} characters (or empty)"
    ]
    with pytest.raises(RuntimeError, match="URL_SIGNING_SECRET must be at least"):
        create_app(short)
    assert production(tmp_path, url_signing_secret="u" * MIN_URL_SIGNING_SECRET_LENGTH).production_problems() == []
    assert production(tmp_path, url_signing_secret="").production_problems() == []


def test_rs256_needs_both_keys(tmp_path: Path) -> None:
    settings = production(tmp_path, jwt_algorithm="RS256", jwt_secret="")
    assert "JWT_PRIVATE_KEY and JWT_PUBLIC_KEY must be set for RS256" in settings.production_problems()


def test_development_needs_no_secret(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, environment="development", data_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.production_problems() == []
    assert settings.introspection_enabled and settings.graphiql_enabled
    assert not production(tmp_path).introspection_enabled
    assert not production(tmp_path).graphiql_enabled


def test_production_wants_a_mail_server_and_a_sender(tmp_path: Path) -> None:
    # given production settings without SMTP_HOST and MAIL_FROM
    settings = production(tmp_path, smtp_host="", mail_from="")
    # then both are named, and the outbox (a development tool) is off
    assert settings.production_problems() == [
        "SMTP_HOST must be set (password resets and export links are sent by e-mail)",
        "MAIL_FROM must be set (the sender address of the product's e-mail)",
    ]
    assert not settings.mail_outbox_enabled


def test_production_refuses_a_password_sent_in_the_clear(tmp_path: Path) -> None:
    clear = production(tmp_path, smtp_tls="none", smtp_password="secret")
    assert clear.production_problems() == ["SMTP_TLS=none would send SMTP_PASSWORD in the clear: use starttls or tls"]
    assert production(tmp_path, smtp_tls="starttls", smtp_password="secret").production_problems() == []
    assert production(tmp_path, smtp_tls="none").production_problems() == []  # an unauthenticated local relay


@pytest.mark.parametrize(
    "sender", ["Genhub <noreply@genhub.example>", "a@b.c, d@e.f", "noreply@genhub.example\nBcc: x@y.z", "no-at-sign"]
)
def test_mail_from_is_one_plain_address(tmp_path: Path, sender: str) -> None:
    with pytest.raises(ValueError, match="MAIL_FROM must be one plain address"):
        production(tmp_path, mail_from=sender)


def test_the_smtp_port_follows_the_tls_mode(tmp_path: Path) -> None:
    assert [production(tmp_path, smtp_tls=m).effective_smtp_port for m in ("none", "starttls", "tls")] == [25, 587, 465]
    assert production(tmp_path, smtp_port=2525).effective_smtp_port == 2525


def test_development_without_smtp_writes_to_the_outbox(tmp_path: Path) -> None:
    development = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert development.mail_outbox_enabled and development.effective_mail_from == "genhub@localhost"
    assert not Settings(_env_file=None, smtp_host="smtp.example.com").mail_outbox_enabled  # type: ignore[call-arg]
