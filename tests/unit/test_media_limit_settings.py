"""The media limits a worker applies to provider outputs come from their own settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.media import MediaLimits
from infrastructure.processing_binding import media_limits, processing_policy, thumbnail_policy
from infrastructure.settings import Settings


def test_output_limits_are_set_apart_from_the_upload_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # given an operator who lowers uploads and sets every output limit
    monkeypatch.setenv("UPLOAD_MAX_BYTES", "1048576")
    monkeypatch.setenv("OUTPUT_MAX_BYTES", "734003200")
    monkeypatch.setenv("MEDIA_MAX_PIXELS", "16777216")
    monkeypatch.setenv("MEDIA_MAX_SIDE", "8192")
    monkeypatch.setenv("MEDIA_MAX_VIDEO_SECONDS", "120.5")
    monkeypatch.setenv("MEDIA_PROBE_TIMEOUT_SECONDS", "12")
    settings = Settings(_env_file=None)
    # then outputs are bound by the output limits, in every policy that checks them
    expected = MediaLimits(
        max_bytes=734003200, max_pixels=16777216, max_side=8192, max_video_seconds=120.5, probe_timeout_seconds=12.0
    )
    assert media_limits(settings) == expected
    assert processing_policy(settings, embedded=True).media_limits == expected
    assert thumbnail_policy(settings).limits == expected


def test_the_defaults_are_the_domains() -> None:
    assert media_limits(Settings(_env_file=None)) == MediaLimits()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MEDIA_MAX_PIXELS", "0"),
        ("MEDIA_MAX_SIDE", "-1"),
        ("MEDIA_MAX_VIDEO_SECONDS", "0"),
        ("MEDIA_PROBE_TIMEOUT_SECONDS", "0"),
    ],
)
def test_a_limit_that_would_refuse_everything_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
