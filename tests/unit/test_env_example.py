"""`.env.example` documents every setting with a comment line above it."""

from __future__ import annotations

import re
from pathlib import Path

from infrastructure.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_every_setting_is_documented() -> None:
    # given the example file's variables
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    documented: dict[str, str] = {}
    for i, line in enumerate(lines):
        match = re.match(r"^# ([A-Z0-9_]+)=", line)
        if match:
            documented[match.group(1)] = lines[i - 1]
    # then each setting appears, preceded by a one-line comment
    for name in Settings.model_fields:
        assert name.upper() in documented, f"{name.upper()} missing from .env.example"
        comment = documented[name.upper()]
        assert comment.startswith("# ") and "=" not in comment.split(" ")[1], f"{name.upper()} has no comment line"


def test_settings_ignore_unknown_variables(monkeypatch: object) -> None:
    import pytest

    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("SOMETHING_ELSE_ENTIRELY", "1")
        assert Settings(_env_file=None).environment == "development"  # type: ignore[call-arg]
    finally:
        mp.undo()


def test_defaults_are_the_embedded_backends() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.redis_url == ""
    assert settings.storage_backend == "local"
    assert settings.default_provider == "simulated"


def test_production_names_every_missing_variable() -> None:
    settings = Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    problems = " ".join(settings.production_problems())
    for name in ("DATABASE_URL", "REDIS_URL", "JWT_SECRET", "LOCAL_STORAGE_PATH", "SMTP_HOST", "MAIL_FROM"):
        assert name in problems


def test_production_rejects_a_short_secret() -> None:
    settings = Settings(_env_file=None, environment="production", jwt_secret="short")  # type: ignore[call-arg]
    assert any("at least 32" in p for p in settings.production_problems())
