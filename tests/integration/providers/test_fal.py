"""fal provider against a fake fal queue API over real HTTP (JWKS and Ed25519 webhooks included)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from domain.errors import ServiceUnavailable
from domain.ports import AsyncCallbackVerifier, ProviderError, ProviderJob
from infrastructure.providers.fal import FalProvider
from infrastructure.providers.fal_keys import FalJwks
from tests.fixtures.clock import FakeClock
from tests.integration.providers.pngcheck import assert_valid_png

if TYPE_CHECKING:
    from tests.fixtures.fake_fal import FakeFal

pytest_plugins = ["tests.fixtures.fake_fal"]

MODEL = "fal-ai/flux/dev"
WEBHOOK = "https://genhub.example/providers/fal/callback"
MakeFal = Callable[..., FalProvider]


def job(prompt: str = "a koi pond", **overrides: Any) -> ProviderJob:
    fields: dict[str, Any] = {
        "generation_id": uuid.uuid4(),
        "provider_model": MODEL,
        "prompt": prompt,
        "params": {"image_size": "square_hd"},
    }
    fields.update(overrides)
    return ProviderJob(**fields)


@pytest.fixture
def make_fal(fake_fal: FakeFal, http_client: httpx.AsyncClient, clock: FakeClock) -> MakeFal:
    def make(**overrides: Any) -> FalProvider:
        jwks_options = overrides.pop("jwks_options", {})
        jwks = FalJwks(fake_fal.jwks_url, http_client, clock=clock, **jwks_options)
        options: dict[str, Any] = {
            "base_url": fake_fal.base_url,
            "api_key": fake_fal.api_key,
            "client": http_client,
            "jwks": jwks,
            "webhook_url": WEBHOOK,
        }
        options.update(overrides)
        return FalProvider(**options)

    return make


def request_id_of(external_id: str) -> str:
    return external_id.rsplit("/", 1)[1]


def query_of(fake_fal: FakeFal, index: int = 0) -> dict[str, str]:
    webhook = fake_fal.submit_calls[index].webhook
    assert webhook is not None
    return {key: values[0] for key, values in parse_qs(urlsplit(webhook).query).items()}


# ------------------------------------------------------------------ queue API


async def test_submit_poll_result_and_download(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    fal = make_fal()
    deadline = datetime.now(UTC) + timedelta(seconds=90.9)
    external = await fal.submit(
        job(
            params={"image_size": "square_hd", "_attempt": 1},
            input_urls=["https://cdn.example/in.png"],
            deadline_at=deadline,
        )
    )

    call = fake_fal.submit_calls[0]
    assert external.startswith("fal-ai/flux/") and call.path == MODEL
    assert call.authorization == f"Key {fake_fal.api_key}" and call.timeout_header == "90"
    assert call.body == {
        "image_size": "square_hd",
        "prompt": "a koi pond",
        "image_url": "https://cdn.example/in.png",
        "image_urls": ["https://cdn.example/in.png"],
    }
    assert call.webhook is not None and call.webhook.startswith(WEBHOOK + "?")
    assert query_of(fake_fal) == {"app": "fal-ai/flux"}
    queued, running, done = [await fal.status(external) for _ in range(3)]
    assert (queued.state, queued.raw["queue_position"]) == ("pending", 2)
    assert running.state == "running"
    assert done.state == "succeeded"
    request_id = request_id_of(external)
    assert done.output_urls == (fake_fal.file_url(request_id, 0),)
    # status, result and cancel use the app id, never the subpath
    assert fake_fal.result_calls == [request_id]
    png = b"".join([chunk async for chunk in fal.download(done.output_urls[0])])
    assert png == fake_fal.png
    assert_valid_png(png)


async def test_video_and_several_images(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    fake_fal.statuses = ["COMPLETED"]
    fake_fal.result_count = 3
    fal = make_fal()
    images = await fal.status(await fal.submit(job()))
    fake_fal.outcome = "video"
    video = await fal.status(await fal.submit(job(provider_model="fal-ai/kling-video")))

    assert len(images.output_urls) == 3
    assert video.state == "succeeded" and video.output_urls[0].endswith(".mp4")


async def test_failed_request_carries_code_and_detail(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    fake_fal.statuses = ["COMPLETED"]
    fake_fal.outcome = "error"
    fal = make_fal()

    status = await fal.status(await fal.submit(job()))

    assert (status.state, status.error_code) == ("failed", "FAL_VALIDATION")
    assert status.error_message is not None and "field required" in status.error_message


async def test_completed_with_error_fields(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    fal = make_fal()
    external = await fal.submit(job())
    fake_fal.reply_status(body={"status": "COMPLETED", "error": "Runner crashed", "error_type": "runner_error"})

    status = await fal.status(external)

    assert (status.state, status.error_code, status.error_message) == ("failed", "FAL_RUNNER_ERROR", "Runner crashed")


async def test_start_timeout_fails_without_retrying(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    # given fal answers the result with its start-timeout 504 (our X-Fal-Request-Timeout ran out)
    fal = make_fal()
    external = await fal.submit(job())
    fake_fal.reply_status(body={"status": "COMPLETED"})
    fake_fal.reply_result(status=504, body={"detail": "timed out"}, headers={"X-Fal-Request-Timeout-Type": "user"})
    fake_fal.reply_status(body={"status": "COMPLETED"})
    fake_fal.reply_result(status=504, body={"detail": "gateway"})

    status = await fal.status(external)
    with pytest.raises(ProviderError) as other_504:
        await fal.status(external)

    # then that one is a failure with its own code; any other 504 stays retryable
    assert (status.state, status.error_code) == ("failed", "FAL_START_TIMEOUT")
    assert (other_504.value.code, other_504.value.retryable) == ("FAL_HTTP_504", True)


async def test_no_webhook_and_no_deadline_header_when_not_configured(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    await make_fal(webhook_url=None).submit(job(params={}))

    call = fake_fal.submit_calls[0]
    assert (call.webhook, call.timeout_header, call.body) == (None, None, {"prompt": "a koi pond"})


async def test_deadline_already_passed_is_refused_before_any_call(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    with pytest.raises(ProviderError) as caught:
        await make_fal().submit(job(deadline_at=datetime.now(UTC) - timedelta(seconds=1)))

    assert (caught.value.code, caught.value.retryable, fake_fal.submit_calls) == ("FAL_DEADLINE_PASSED", False, [])


async def test_cancel_answers(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    fal = make_fal()
    queued = await fal.submit(job())
    fake_fal.statuses = ["COMPLETED"]
    completed = await fal.submit(job())
    await fal.status(completed)

    await fal.cancel(queued)  # 202 CANCELLATION_REQUESTED
    await fal.cancel(completed)  # 400 ALREADY_COMPLETED: nothing to cancel
    await fal.cancel(f"fal-ai/flux/{uuid.uuid4()}")  # 404 NOT_FOUND: nothing to cancel
    fake_fal.reply_cancel(status=503, body={"detail": "busy"})
    with pytest.raises(ProviderError) as caught:
        await fal.cancel(queued)

    assert fake_fal.requests[request_id_of(queued)].canceled
    assert not fake_fal.requests[request_id_of(completed)].canceled
    assert (caught.value.code, caught.value.retryable) == ("FAL_HTTP_503", True)
    assert fal.supports_cancel


async def test_missing_key_is_not_configured(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    fal = make_fal(api_key="")
    for call in (fal.submit(job()), fal.status("fal-ai/flux/abc"), fal.cancel("fal-ai/flux/abc")):
        with pytest.raises(ProviderError) as caught:
            await call
        assert (caught.value.code, caught.value.retryable) == ("PROVIDER_NOT_CONFIGURED", False)
    assert fake_fal.submit_calls == []


# ------------------------------------------------------------------ error mapping


@pytest.mark.parametrize(
    ("status", "headers", "code", "retryable", "retry_after"),
    [
        (429, {"Retry-After": "7"}, "FAL_RATE_LIMITED", True, 7.0),
        (429, {}, "FAL_RATE_LIMITED", True, 10.0),
        (500, {}, "FAL_HTTP_500", True, None),
        (503, {"Retry-After": "2"}, "FAL_HTTP_503", True, 2.0),
        (401, {}, "FAL_UNAUTHORIZED", False, None),
        (403, {}, "FAL_FORBIDDEN", False, None),
        (404, {}, "FAL_NOT_FOUND", False, None),
        (422, {}, "FAL_VALIDATION", False, None),
        (418, {}, "FAL_HTTP_418", False, None),
    ],
)
async def test_submit_errors(
    fake_fal: FakeFal,
    make_fal: MakeFal,
    status: int,
    headers: dict[str, str],
    code: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    fake_fal.reply_submit(status=status, body={"detail": "explained"}, headers=headers)

    with pytest.raises(ProviderError) as caught:
        await make_fal().submit(job())

    assert (caught.value.code, caught.value.retryable, caught.value.retry_after) == (code, retryable, retry_after)
    assert caught.value.message == "explained"


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ({"raw": b"<html>oops</html>"}, "FAL_BAD_RESPONSE"),
        ({"body": ["not", "an", "object"]}, "FAL_BAD_RESPONSE"),
        ({"body": {"request_id": "../../etc"}}, "FAL_BAD_RESPONSE"),
        ({"body": {"status_url": "https://elsewhere"}}, "FAL_BAD_RESPONSE"),
    ],
)
async def test_unparseable_submit_answers(fake_fal: FakeFal, make_fal: MakeFal, reply: Any, code: str) -> None:
    fake_fal.reply_submit(**reply)

    with pytest.raises(ProviderError) as caught:
        await make_fal().submit(job())

    assert (caught.value.code, caught.value.retryable) == (code, True)


async def test_unparseable_status_and_result(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    fal = make_fal()
    external = await fal.submit(job())
    fake_fal.reply_status(body={"status": "DANCING"})
    fake_fal.reply_status(body={"status": "COMPLETED"})
    fake_fal.reply_result(body={"images": [{"url": "javascript:alert(1)"}]})

    for _ in range(2):
        with pytest.raises(ProviderError) as caught:
            await fal.status(external)
        assert (caught.value.code, caught.value.retryable) == ("FAL_BAD_RESPONSE", True)


async def test_bad_model_and_external_ids_are_permanent(make_fal: MakeFal) -> None:
    fal = make_fal()
    with pytest.raises(ProviderError) as bad_model:
        await fal.submit(job(provider_model="../admin"))
    with pytest.raises(ProviderError) as bad_external:
        await fal.status("fal-ai/../../x")

    assert (bad_model.value.code, bad_model.value.retryable) == ("FAL_BAD_MODEL_ID", False)
    assert (bad_external.value.code, bad_external.value.retryable) == ("FAL_BAD_EXTERNAL_ID", False)


async def test_transport_errors_are_retryable(http_client: httpx.AsyncClient, make_fal: MakeFal) -> None:
    fal = make_fal(base_url="http://127.0.0.1:9")

    with pytest.raises(ProviderError) as caught:
        await fal.submit(job())

    assert (caught.value.code, caught.value.retryable) == ("PROVIDER_UNAVAILABLE", True)


# ------------------------------------------------------------------ webhooks


async def submitted(fake_fal: FakeFal, fal: FalProvider) -> tuple[str, str]:
    external = await fal.submit(job())
    return external, request_id_of(external)


async def test_signed_webhook_is_verified_against_the_jwks(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    fal = make_fal()
    assert isinstance(fal, AsyncCallbackVerifier)
    external, request_id = await submitted(fake_fal, fal)
    body = fake_fal.webhook_body(request_id)

    callback = await fal.verify_callback(fake_fal.sign(request_id, body), body, query_of(fake_fal))

    assert callback.external_id == external
    assert callback.status.state == "succeeded" and callback.status.output_urls
    assert fake_fal.jwks_calls == 1


async def test_error_webhook_reports_failure(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    fake_fal.outcome = "error"
    fal = make_fal()
    _, request_id = await submitted(fake_fal, fal)
    body = fake_fal.webhook_body(request_id)

    callback = await fal.verify_callback(fake_fal.sign(request_id, body), body, query_of(fake_fal))

    assert (callback.status.state, callback.status.error_code) == ("failed", "FAL_REQUEST_FAILED")


async def test_jwks_is_cached_then_refetched_after_its_ttl(
    fake_fal: FakeFal, make_fal: MakeFal, clock: FakeClock
) -> None:
    fal = make_fal(jwks_options={"ttl_seconds": 3600})
    _, request_id = await submitted(fake_fal, fal)
    body = fake_fal.webhook_body(request_id)
    query = query_of(fake_fal)

    for _ in range(3):
        await fal.verify_callback(fake_fal.sign(request_id, body), body, query)
    assert fake_fal.jwks_calls == 1
    clock.advance(3601)
    await fal.verify_callback(fake_fal.sign(request_id, body), body, query)
    assert fake_fal.jwks_calls == 2


async def test_rotated_key_triggers_one_refetch(fake_fal: FakeFal, make_fal: MakeFal, clock: FakeClock) -> None:
    fal = make_fal(jwks_options={"refetch_interval_seconds": 60})
    _, request_id = await submitted(fake_fal, fal)
    body = fake_fal.webhook_body(request_id)
    query = query_of(fake_fal)
    await fal.verify_callback(fake_fal.sign(request_id, body), body, query)
    clock.advance(61)

    # when fal rotates to a key with a new kid
    fake_fal.rotate_key()
    callback = await fal.verify_callback(fake_fal.sign(request_id, body), body, query)

    # then the unknown key made us refetch once, and the new key verifies
    assert callback.external_id.endswith(request_id) and fake_fal.jwks_calls == 2
    # and a forged signature right after does not make us fetch again (throttled)
    forger = fake_fal.rotate_key()
    fake_fal.published = []
    with pytest.raises(PermissionError):
        await fal.verify_callback(fake_fal.sign(request_id, body, key=forger), body, query)
    assert fake_fal.jwks_calls == 2


def _tampered(fake_fal: FakeFal, request_id: str, body: bytes, now: int) -> dict[str, dict[str, str]]:
    good = fake_fal.sign(request_id, body, timestamp=now)
    other = fake_fal.sign(request_id, body + b" ", timestamp=now)
    return {
        "unsigned": {},
        "missing-signature": {k: v for k, v in good.items() if k != "X-Fal-Webhook-Signature"},
        "other-body": {**good, "X-Fal-Webhook-Signature": other["X-Fal-Webhook-Signature"]},
        "other-user": {**good, "X-Fal-Webhook-User-Id": "someone-else"},
        "stale": fake_fal.sign(request_id, body, timestamp=now - 301),
        "future": fake_fal.sign(request_id, body, timestamp=now + 301),
        "not-hex": {**good, "X-Fal-Webhook-Signature": "zz" * 64},
        "short": {**good, "X-Fal-Webhook-Signature": "ab" * 10},
        "bad-timestamp": {**good, "X-Fal-Webhook-Timestamp": "yesterday"},
    }


async def test_unsigned_wrong_and_stale_webhooks_are_refused(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    # The adapter's clock stands still at `now`: a timestamp one second past the tolerance is refused however
    # slowly the test runs (with the real clock, a slow run brought the "future" one back within it).
    now = int(time.time())
    fal = make_fal(clock=lambda: float(now))
    _, request_id = await submitted(fake_fal, fal)
    body = fake_fal.webhook_body(request_id)
    query = query_of(fake_fal)
    assert (await fal.verify_callback(fake_fal.sign(request_id, body, timestamp=now), body, query)) is not None

    accepted = []
    for name, headers in _tampered(fake_fal, request_id, body, now).items():
        try:
            await fal.verify_callback(headers, body, query)
        except PermissionError:
            continue
        accepted.append(name)
    assert accepted == []
    with pytest.raises(NotImplementedError):  # the callback use case never takes the sync path for fal
        fal.parse_callback({}, body)


async def test_signed_but_malformed_webhooks_are_value_errors(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    fal = make_fal()
    _, request_id = await submitted(fake_fal, fal)
    other = str(uuid.uuid4())
    cases = [
        (b"{not json", {"app": "fal-ai/flux"}),
        (json.dumps({"request_id": other, "status": "OK", "payload": {}}).encode(), {"app": "fal-ai/flux"}),
        (json.dumps({"request_id": request_id, "status": "WHAT"}).encode(), {"app": "fal-ai/flux"}),
        (fake_fal.webhook_body(request_id), {}),
        (fake_fal.webhook_body(request_id), {"app": "../../admin"}),
    ]
    for body, query in cases:
        with pytest.raises(ValueError):
            await fal.verify_callback(fake_fal.sign(request_id, body), body, query)


async def test_jwks_unreachable_is_service_unavailable(
    make_fal: MakeFal, fake_fal: FakeFal, http_client: httpx.AsyncClient
) -> None:
    fal = make_fal(jwks=FalJwks("http://127.0.0.1:9/.well-known/jwks.json", http_client))
    _, request_id = await submitted(fake_fal, fal)
    body = fake_fal.webhook_body(request_id)

    with pytest.raises(ServiceUnavailable):
        await fal.verify_callback(fake_fal.sign(request_id, body), body, query_of(fake_fal))


async def test_concurrent_webhooks_fetch_the_jwks_once(fake_fal: FakeFal, make_fal: MakeFal) -> None:
    fal = make_fal()
    _, request_id = await submitted(fake_fal, fal)
    body = fake_fal.webhook_body(request_id)
    query = query_of(fake_fal)

    results = await asyncio.gather(
        *(fal.verify_callback(fake_fal.sign(request_id, body), body, query) for _ in range(10))
    )

    assert len(results) == 10 and fake_fal.jwks_calls == 1
