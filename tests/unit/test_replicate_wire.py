"""Replicate's wire format: model references, Cancel-After, predictions, errors, signed webhooks."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import webhooks
from domain.ports import ProviderError
from infrastructure.providers.replicate import ReplicateProvider
from infrastructure.providers.replicate_wire import (
    ModelRef,
    cancel_after,
    error_for_answer,
    output_urls,
    parse_model,
    status_from_prediction,
)

VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
SECRET = webhooks.new_secret()
NOW = datetime(2026, 1, 1, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


# Never used to send anything here; built once (a client builds an SSL context).
CLIENT = httpx.AsyncClient()


def provider(secret: str = SECRET, clock: float | None = None) -> ReplicateProvider:
    return ReplicateProvider(
        "https://api.replicate.com",
        "r8_token",
        secret,
        CLIENT,
        clock=(lambda: clock) if clock is not None else time.time,
    )


# ------------------------------------------------------------------ model references


@pytest.mark.parametrize(
    ("reference", "expected", "path"),
    [
        (
            "black-forest-labs/flux-schnell",
            ModelRef("black-forest-labs", "flux-schnell", None),
            "/v1/models/black-forest-labs/flux-schnell/predictions",
        ),
        (f"stability-ai/sdxl:{VERSION}", ModelRef("stability-ai", "sdxl", VERSION), "/v1/predictions"),
        (VERSION, ModelRef(None, None, VERSION), "/v1/predictions"),
    ],
)
def test_model_references(reference: str, expected: ModelRef, path: str) -> None:
    assert parse_model(reference) == expected
    assert expected.create_path == path


@pytest.mark.parametrize(
    "reference", ["", "owner/", "/name", "a/b/c", "../x/y", "owner/name:", "owner/na me", "owner/name:../../x", "x?y"]
)
def test_bad_model_references_are_refused(reference: str) -> None:
    with pytest.raises(ValueError):
        parse_model(reference)


@given(st.text(max_size=80))
def test_any_model_reference_yields_a_safe_path_or_value_error(reference: str) -> None:
    try:
        ref = parse_model(reference)
    except ValueError:
        return
    path = ref.create_path
    assert ".." not in path and "?" not in path and "#" not in path and "//" not in path
    assert all(ch.isascii() and (ch.isalnum() or ch in "/-_.") for ch in path)


# ------------------------------------------------------------------ Cancel-After


def test_cancel_after_is_whole_seconds_rounded_up_with_a_floor() -> None:
    assert cancel_after(None, NOW) is None
    assert cancel_after(NOW + timedelta(seconds=299.2), NOW) == "300s"
    assert cancel_after(NOW + timedelta(seconds=1), NOW) == "5s"
    with pytest.raises(ProviderError) as caught:
        cancel_after(NOW - timedelta(seconds=1), NOW)
    assert (caught.value.code, caught.value.retryable) == ("DEADLINE_EXCEEDED", False)


# ------------------------------------------------------------------ predictions


def prediction(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": "gm3qorzdhgbfurvjtvhg6dckhu", "status": status, **fields}


def test_statuses_map_to_ours() -> None:
    assert status_from_prediction(prediction("starting"))[1].state == "pending"
    assert status_from_prediction(prediction("processing"))[1].state == "running"
    ok = status_from_prediction(prediction("succeeded", output="https://replicate.delivery/a.png"))[1]
    assert (ok.state, tuple(ok.output_urls), ok.progress) == ("succeeded", ("https://replicate.delivery/a.png",), 1.0)
    failed = status_from_prediction(prediction("failed", error="CUDA out of memory"))[1]
    assert (failed.state, failed.error_code, failed.error_message) == (
        "failed",
        "REPLICATE_FAILED",
        "CUDA out of memory",
    )
    canceled = status_from_prediction(prediction("canceled"))[1]
    assert (canceled.state, canceled.error_code) == ("failed", "REPLICATE_CANCELED")
    aborted = status_from_prediction(prediction("aborted"))[1]
    assert (aborted.state, aborted.error_code) == ("failed", "PROVIDER_ABORTED")
    assert aborted.error_message is not None and "nothing ran" in aborted.error_message


def test_output_urls_from_every_shape() -> None:
    assert output_urls("https://x/1.png") == ("https://x/1.png",)
    assert output_urls(["https://x/1.png", "https://x/2.png", "https://x/1.png"]) == (
        "https://x/1.png",
        "https://x/2.png",
    )
    assert output_urls({"images": ["https://x/1.png"], "seed": 3, "text": "hello"}) == ("https://x/1.png",)
    assert output_urls("a caption") == () and output_urls(None) == () and output_urls(42) == ()
    assert output_urls(["file:///etc/passwd", "javascript:alert(1)", "ftp://x/y"]) == ()
    nested: Any = "https://x/deep.png"
    for _ in range(50):
        nested = [nested]
    assert output_urls(nested) == ()  # too deep to walk


@given(json_values)
def test_hostile_prediction_json_raises_only_value_error(value: Any) -> None:
    for candidate in (value, {"id": "abc", "status": "succeeded", "output": value}, {"id": value, "status": value}):
        try:
            _id, status = status_from_prediction(candidate)
        except ValueError:
            continue
        assert status.state in ("pending", "running", "succeeded", "failed")
        assert all(url.startswith(("http://", "https://")) for url in status.output_urls)


# ------------------------------------------------------------------ errors


def test_error_answers() -> None:
    throttled = error_for_answer(429, {"detail": "Request was throttled. Expected available in 7 seconds."}, {})
    assert (throttled.code, throttled.retryable, throttled.retry_after) == ("REPLICATE_RATE_LIMITED", True, 7.0)
    header = error_for_answer(429, {"detail": "slow down"}, {"retry-after": "3"})
    assert header.retry_after == 3.0
    default = error_for_answer(429, None, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert default.retryable and default.retry_after == 1.0
    invalid = error_for_answer(422, {"title": "Input validation failed", "detail": "prompt is required"}, {})
    assert (invalid.code, invalid.retryable, invalid.message) == (
        "REPLICATE_INVALID_INPUT",
        False,
        "prompt is required",
    )
    assert error_for_answer(503, None, {}).retryable
    assert error_for_answer(401, {}, {}).code == "REPLICATE_UNAUTHORIZED"
    assert not error_for_answer(418, [], {}).retryable


@given(
    st.integers(min_value=400, max_value=599),
    json_values,
    st.dictionaries(st.sampled_from(["retry-after", "x"]), st.text(max_size=20)),
)
def test_any_error_answer_is_a_provider_error(status: int, body: Any, headers: dict[str, str]) -> None:
    error = error_for_answer(status, body, headers)
    assert isinstance(error, ProviderError) and error.code.startswith("REPLICATE_")
    assert error.retryable == (status >= 500 or status in (402, 429))
    assert error.retry_after is None or error.retry_after >= 0


# ------------------------------------------------------------------ webhooks


def signed(body: bytes, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    return webhooks.signed_headers([secret], "msg_1", at if at is not None else int(time.time()), body)


def test_signed_webhook_decodes_the_prediction() -> None:
    body = json.dumps(prediction("succeeded", output=["https://replicate.delivery/x.png"])).encode()
    callback = provider().parse_callback(signed(body), body)
    assert callback.external_id == "gm3qorzdhgbfurvjtvhg6dckhu" and callback.status.state == "succeeded"
    # header names are case-insensitive
    upper = {key.title(): value for key, value in signed(body).items()}
    assert provider().parse_callback(upper, body).external_id == callback.external_id


def test_webhooks_that_are_not_genuine_are_permission_errors() -> None:
    body = json.dumps(prediction("succeeded")).encode()
    with pytest.raises(PermissionError):
        provider().parse_callback({}, body)
    with pytest.raises(PermissionError):
        provider().parse_callback(signed(body, secret=webhooks.new_secret()), body)
    with pytest.raises(PermissionError):
        provider().parse_callback(signed(body, at=int(time.time()) - 3600), body)
    with pytest.raises(PermissionError):
        provider().parse_callback(signed(body), body + b" ")
    with pytest.raises(PermissionError):  # no secret configured: nothing is accepted
        provider(secret="").parse_callback(signed(body), body)


@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_signed_hostile_bodies_raise_only_value_error(body: bytes) -> None:
    try:
        callback = provider().parse_callback(signed(body), body)
    except ValueError:
        return
    assert callback.external_id


@given(
    st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "x"]), st.text(max_size=60)
    ),
    st.binary(max_size=50),
)
def test_forged_headers_raise_only_permission_error(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(PermissionError):
        provider().parse_callback(headers, body)


def test_settings_validate_the_webhook_secret() -> None:
    from infrastructure.settings import Settings

    assert Settings(_env_file=None, replicate_webhook_secret=SECRET).replicate_webhook_secret == SECRET  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        Settings(_env_file=None, replicate_webhook_secret="not-a-whsec")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        Settings(_env_file=None, replicate_base_url="ftp://api.replicate.com")  # type: ignore[call-arg]


def test_providers_are_told_where_to_call_back_when_any_can_verify() -> None:
    from infrastructure.processing_binding import processing_policy
    from infrastructure.settings import Settings

    def policy(**overrides: Any) -> str | None:
        settings = Settings(_env_file=None, public_base_url="https://genhub.example", **overrides)  # type: ignore[call-arg]
        return processing_policy(settings, embedded=True).callback_base_url

    assert policy(kie_callback_secret="", replicate_webhook_secret="") is None
    assert policy(kie_callback_secret="", replicate_webhook_secret=SECRET) == "https://genhub.example"
