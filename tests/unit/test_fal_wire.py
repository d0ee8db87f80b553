"""fal wire parsing and webhook verification under generated (hostile) input."""

from __future__ import annotations

import asyncio
import hashlib
import json
import string
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ports import ProviderError
from infrastructure.providers import fal_wire
from infrastructure.providers.fal import FalProvider
from infrastructure.providers.fal_keys import FalJwks, JwksError, parse_jwks

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
objects = st.dictionaries(
    st.sampled_from(["status", "queue_position", "error", "error_type", "images", "image", "video", "videos", "x"]),
    json_values,
    max_size=6,
)


@given(model_id=st.text(max_size=120))
def test_model_ids_are_split_or_refused(model_id: str) -> None:
    try:
        app_id, path = fal_wire.split_model_id(model_id)
    except ValueError:
        return
    # whatever is accepted is made of safe path segments only
    assert path == model_id and model_id.startswith(app_id)
    assert all(part not in ("", ".", "..") for part in path.split("/"))
    assert set(path) <= set(string.ascii_letters + string.digits + "._-/")


@pytest.mark.parametrize(
    ("model_id", "app_id"),
    [("fal-ai/flux/dev", "fal-ai/flux"), ("fal-ai/fast-sdxl", "fal-ai/fast-sdxl"), ("a/b/c/d", "a/b")],
)
def test_app_id_drops_the_subpath(model_id: str, app_id: str) -> None:
    assert fal_wire.split_model_id(model_id) == (app_id, model_id)


@given(app=st.text(max_size=40), request_id=st.text(max_size=40))
def test_external_ids_round_trip_or_are_refused(app: str, request_id: str) -> None:
    try:
        external = fal_wire.external_id(app, request_id)
    except ValueError:
        return
    assert fal_wire.parse_external_id(external) == (app, request_id)


@given(value=st.text(max_size=200))
def test_parse_external_id_never_yields_traversal(value: str) -> None:
    try:
        app, request_id = fal_wire.parse_external_id(value)
    except ValueError:
        return
    assert ".." not in app.split("/") and "/" not in request_id and "?" not in value and "#" not in value


@given(body=objects)
def test_queue_status_maps_or_raises_value_error(body: dict[str, Any]) -> None:
    try:
        status = fal_wire.queue_status(body)
    except ValueError:
        assert body.get("status") not in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
        return
    if status is not None:
        assert status.state in ("pending", "running", "failed")


@given(body=objects)
def test_results_map_or_raise_value_error(body: dict[str, Any]) -> None:
    try:
        status = fal_wire.result_status(body)
    except ValueError:
        return
    assert status.state in ("succeeded", "failed")
    assert all(url.startswith(("http://", "https://")) for url in status.output_urls)


@given(
    body=st.fixed_dictionaries(
        {"status": st.sampled_from(["OK", "ERROR"]) | st.text(max_size=5)},
        optional={"payload": objects | json_values, "error": json_values, "payload_error": json_values},
    )
)
def test_webhook_bodies_map_or_raise_value_error(body: dict[str, Any]) -> None:
    try:
        status = fal_wire.webhook_status(body)
    except ValueError:
        return
    assert status.state in ("succeeded", "failed")
    assert status.error_message is None or len(status.error_message) <= fal_wire.MAX_MESSAGE_CHARS


@given(body=st.binary(max_size=200) | st.builds(lambda v: json.dumps(v).encode(), json_values))
def test_json_object_refuses_anything_but_an_object(body: bytes) -> None:
    try:
        parsed = fal_wire.json_object(body, "x")
    except ValueError:
        return
    assert isinstance(parsed, dict)


@given(status=st.integers(min_value=400, max_value=599), body=json_values)
def test_every_error_status_is_classified(status: int, body: Any) -> None:
    error = fal_wire.error_for_status(status, body)
    assert error.retryable is (status == 429 or status >= 500)
    assert error.code.startswith("FAL_") and len(error.message) <= fal_wire.MAX_MESSAGE_CHARS + 10


@given(content=st.binary(max_size=300) | st.builds(lambda v: json.dumps(v).encode(), json_values))
def test_jwks_parsing_never_crashes_otherwise(content: bytes) -> None:
    try:
        keys = parse_jwks(content)
    except JwksError:
        return
    assert isinstance(keys, tuple)


# ------------------------------------------------------------------ signatures


KEY = Ed25519PrivateKey.generate()


def provider_with_key() -> FalProvider:
    jwks = FalJwks("http://127.0.0.1:9/jwks", httpx.AsyncClient())
    raw = KEY.public_key()
    jwks._keys = (raw,)
    jwks._fetched_at = time.monotonic()
    return FalProvider("http://127.0.0.1:9", "k", httpx.AsyncClient(), jwks)


def signed(request_id: str, user: str, stamp: str, body: bytes) -> dict[str, str]:
    message = "\n".join((request_id, user, stamp, hashlib.sha256(body).hexdigest())).encode()
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": user,
        "X-Fal-Webhook-Timestamp": stamp,
        "X-Fal-Webhook-Signature": KEY.sign(message).hex(),
    }


FAL = provider_with_key()


def verify(headers: dict[str, str], body: bytes) -> object:
    return asyncio.run(FAL.verify_callback(headers, body, {"app": "fal-ai/flux"}))


@settings(max_examples=60)
@given(
    headers=st.dictionaries(
        st.sampled_from(
            [
                "X-Fal-Webhook-Request-Id",
                "X-Fal-Webhook-User-Id",
                "X-Fal-Webhook-Timestamp",
                "X-Fal-Webhook-Signature",
                "x-other",
            ]
        ),
        st.text(max_size=140),
    ),
    body=st.binary(max_size=200),
)
def test_forged_headers_are_refused(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises((PermissionError, ValueError)):
        verify(headers, body)


@settings(max_examples=60)
@given(flip=st.integers(min_value=0, max_value=10_000), body=st.binary(min_size=1, max_size=200))
def test_any_changed_body_byte_breaks_the_signature(flip: int, body: bytes) -> None:
    request_id = "0a1b2c3d-0000-4000-8000-000000000000"
    headers = signed(request_id, "user", str(int(time.time())), body)
    index = flip % len(body)
    changed = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    with pytest.raises(PermissionError):
        verify(headers, changed)


def test_a_genuine_webhook_passes_the_async_path_with_the_app_query_and_never_the_sync_one() -> None:
    request_id = "0a1b2c3d-0000-4000-8000-000000000000"
    body = json.dumps({"request_id": request_id, "status": "OK", "payload": {"images": [{"url": "https://x/y.png"}]}})
    headers = signed(request_id, "user", str(int(time.time())), body.encode())

    callback = asyncio.run(FAL.verify_callback(headers, body.encode(), {"app": "fal-ai/flux"}))

    assert callback.external_id == f"fal-ai/flux/{request_id}" and callback.status.state == "succeeded"
    with pytest.raises(NotImplementedError):  # the sync path has no query and fetches no key: never used
        FAL.parse_callback(headers, body.encode())
    with pytest.raises(ValueError):  # without the app query the external id cannot be named
        asyncio.run(FAL.verify_callback(headers, body.encode(), {}))


def test_provider_error_type_is_domain() -> None:
    assert issubclass(type(fal_wire.error_for_status(429, None)), ProviderError)
