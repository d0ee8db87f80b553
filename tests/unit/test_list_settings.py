"""List settings from the environment: comma-separated or a JSON list, never a start-up crash on a plain list."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from infrastructure.processing_binding import processing_policy
from infrastructure.settings import MIN_URL_SIGNING_SECRET_LENGTH, Settings

ORIGIN = st.from_regex(r"https://[a-z]{1,12}\.example(:[1-9][0-9]{0,3})?", fullmatch=True)


@settings(deadline=None, max_examples=30)  # building Settings reads the environment and local secrets
@given(st.lists(ORIGIN, max_size=5))
def test_comma_separated_origins_from_the_environment(origins: list[str]) -> None:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CORS_ORIGINS", " , ".join(origins))
        assert Settings(_env_file=None).cors_origins == origins


def test_a_json_list_and_an_empty_value_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    monkeypatch.setenv("UPLOAD_ALLOWED_TYPES", "image/png, image/jpeg")
    settings = Settings(_env_file=None)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.upload_allowed_types == ["image/png", "image/jpeg"]
    monkeypatch.setenv("CORS_ORIGINS", "")
    assert Settings(_env_file=None).cors_origins == []


def test_a_broken_json_list_is_refused_with_the_setting_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", '["https://a.example"')
    with pytest.raises(ValueError, match="cors_origins"):
        Settings(_env_file=None)


def test_previous_url_secrets_give_the_keys_of_their_time() -> None:
    # given a deployment that rotated its URL secret, and one whose URL secret derived from a rotated JWT secret
    old_url = Settings(_env_file=None, url_signing_secret="u" * 40)  # type: ignore[call-arg]
    old_jwt = Settings(_env_file=None, jwt_secret="j" * 40)  # type: ignore[call-arg]
    now = Settings(
        _env_file=None,  # type: ignore[call-arg]
        url_signing_secret="n" * 40,
        url_signing_previous_secrets=f"{'u' * 40}, {'j' * 40}",
    )
    previous = now.previous_purpose_secrets("provider-callback")
    # then the keys they used are accepted, the current one is not repeated, and the policy carries them
    assert old_url.purpose_secret("provider-callback") in previous
    assert old_jwt.purpose_secret("provider-callback") in previous
    assert now.purpose_secret("provider-callback") not in previous
    assert processing_policy(now, embedded=True).callback_previous_keys == previous
    assert Settings(_env_file=None).previous_purpose_secrets("provider-callback") == ()  # type: ignore[call-arg]


def test_empty_previous_url_secrets_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a JSON list with an empty entry, and a comma-separated value with a blank one
    monkeypatch.setenv("URL_SIGNING_PREVIOUS_SECRETS", f'["", "  ", "{"u" * 40}"]')
    # then only the real secret is kept (an empty key would sign nothing we could trust)
    assert Settings(_env_file=None).url_signing_previous_secrets == ["u" * 40]  # type: ignore[call-arg]
    monkeypatch.setenv("URL_SIGNING_PREVIOUS_SECRETS", f" , {'j' * 40},")
    assert Settings(_env_file=None).url_signing_previous_secrets == ["j" * 40]  # type: ignore[call-arg]


@pytest.mark.parametrize("short", ["x", "u" * (MIN_URL_SIGNING_SECRET_LENGTH - 1)])
def test_a_short_previous_url_secret_is_refused_with_the_setting_named(
    monkeypatch: pytest.MonkeyPatch, short: str
) -> None:
    monkeypatch.setenv("URL_SIGNING_PREVIOUS_SECRETS", f"{'u' * 40},{short}")
    with pytest.raises(ValidationError, match="url_signing_previous_secrets") as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert f"at least {MIN_URL_SIGNING_SECRET_LENGTH}" in str(refused.value)
