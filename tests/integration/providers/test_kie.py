"""KIE.ai provider against a fake KIE server over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from domain.generations import GenerationStatus
from domain.ports import ProviderError, ProviderJob, RateBucket
from domain.provider_health import ProviderLimit
from domain.use_cases.routed_submission import submit_routes
from infrastructure.providers.kie import KieProvider
from infrastructure.providers.kie_wire import sign
from infrastructure.ratelimit import MemoryRateLimiter
from tests.fixtures.clock import FakeClock
from tests.integration.providers.pngcheck import assert_valid_png
from tests.unit.processing_fakes import Env, Providers

if TYPE_CHECKING:
    from tests.fixtures.fake_kie import FakeKie

# Imported as a plugin (not at run time above) so pytest can rewrite its asserts.
pytest_plugins = ["tests.fixtures.fake_kie"]

SECRET = "webhook-hmac-key"
MakeKie = Callable[..., KieProvider]


def job(prompt: str = "a koi pond", **overrides: Any) -> ProviderJob:
    fields: dict[str, Any] = {
        "generation_id": uuid.uuid4(),
        "provider_model": "google/nano-banana",
        "prompt": prompt,
        "params": {"aspect_ratio": "1:1"},
    }
    fields.update(overrides)
    return ProviderJob(**fields)


@pytest.fixture
def make_kie(fake_kie: FakeKie, http_client: httpx.AsyncClient, clock: FakeClock) -> MakeKie:
    def make(**overrides: Any) -> KieProvider:
        options: dict[str, Any] = {
            "base_url": fake_kie.base_url,
            "api_key": fake_kie.api_key,
            "callback_secret": SECRET,
            "client": http_client,
            "tolerance_seconds": 300,
            "clock": clock,
        }
        options.update(overrides)
        return KieProvider(**options)

    return make


async def download_all(provider: KieProvider, url: str) -> bytes:
    return b"".join([chunk async for chunk in provider.download(url)])


# ------------------------------------------------------------------ happy path


async def test_submit_poll_and_download(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    kie = make_kie()
    task_id = await kie.submit(
        job(
            params={"aspect_ratio": "16:9", "_attempt": 2},
            input_urls=["https://cdn.example/in.png"],
            callback_url="https://genhub.example/providers/kie/callback",
        )
    )

    call = fake_kie.create_calls[0]
    assert call.authorization == f"Bearer {fake_kie.api_key}"
    assert call.body == {
        "model": "google/nano-banana",
        "callBackUrl": "https://genhub.example/providers/kie/callback",
        "input": {"aspect_ratio": "16:9", "prompt": "a koi pond", "image_urls": ["https://cdn.example/in.png"]},
    }
    states = [(await kie.status(task_id)).state for _ in range(2)]
    done = await kie.status(task_id)

    assert states == ["pending", "running"]
    assert done.state == "succeeded"
    assert done.output_urls == (fake_kie.result_url(task_id),)
    assert done.raw["taskId"] == task_id
    png = await download_all(kie, done.output_urls[0])
    assert png == fake_kie.png
    assert_valid_png(png)


async def test_optional_fields_are_omitted(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    await make_kie().submit(job(params={}))

    assert fake_kie.create_calls[0].body == {"model": "google/nano-banana", "input": {"prompt": "a koi pond"}}


async def test_states_map_and_progress_is_normalised(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    fake_kie.states = ["waiting", "queuing", "generating"]
    fake_kie.progress = 40
    kie = make_kie()
    task_id = await kie.submit(job())

    statuses = [await kie.status(task_id) for _ in range(3)]

    assert [s.state for s in statuses] == ["pending", "pending", "running"]
    assert statuses[2].progress == pytest.approx(0.4)


async def test_failed_task_carries_code_and_message(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    fake_kie.states = ["fail"]
    fake_kie.fail_code = "content-violation"
    fake_kie.fail_msg = "The prompt violates the content policy."
    kie = make_kie()

    status = await kie.status(await kie.submit(job()))

    assert status.state == "failed"
    assert status.error_code == "KIE_CONTENT_VIOLATION"
    assert status.error_message == "The prompt violates the content policy."


async def test_multiple_result_urls(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    fake_kie.states = ["success"]
    fake_kie.result_count = 3
    kie = make_kie()
    task_id = await kie.submit(job())

    assert len((await kie.status(task_id)).output_urls) == 3


async def test_malformed_result_json_is_a_retryable_bad_response(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    fake_kie.states = ["success"]
    fake_kie.result_json_override = "{not json"
    kie = make_kie()
    task_id = await kie.submit(job())

    with pytest.raises(ProviderError) as caught:
        await kie.status(task_id)
    assert caught.value.code == "PROVIDER_BAD_RESPONSE"
    assert caught.value.retryable is True


# ------------------------------------------------------------------ error mapping

BODY_CODES = [
    (401, "KIE_UNAUTHORIZED", False),
    (402, "KIE_INSUFFICIENT_CREDITS", True),
    (404, "KIE_NOT_FOUND", False),
    (422, "KIE_VALIDATION", False),
    (429, "KIE_RATE_LIMITED", True),
    (455, "KIE_MAINTENANCE", True),
    (500, "KIE_SERVER_ERROR", True),
    (501, "KIE_GENERATION_FAILED", False),
    (505, "KIE_FEATURE_DISABLED", False),
    (503, "KIE_HTTP_503", True),
    (418, "KIE_HTTP_418", False),
]


@pytest.mark.parametrize(("body_code", "error_code", "retryable"), BODY_CODES)
async def test_body_code_with_http_200_is_an_error(
    fake_kie: FakeKie, make_kie: MakeKie, body_code: int, error_code: str, retryable: bool
) -> None:
    fake_kie.reply_create(body_code=body_code, msg="explained")

    with pytest.raises(ProviderError) as caught:
        await make_kie().submit(job())

    assert (caught.value.code, caught.value.retryable, caught.value.message) == (error_code, retryable, "explained")
    if retryable:
        assert caught.value.retry_after is None or caught.value.retry_after > 0


@pytest.mark.parametrize(("body_code", "error_code", "retryable"), BODY_CODES[:5])
async def test_body_codes_on_record_info(
    fake_kie: FakeKie, make_kie: MakeKie, body_code: int, error_code: str, retryable: bool
) -> None:
    fake_kie.reply_record(body_code=body_code)

    with pytest.raises(ProviderError) as caught:
        await make_kie().status("task_x")

    assert (caught.value.code, caught.value.retryable) == (error_code, retryable)


async def test_long_retry_after_for_exhausted_kie_credits(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    fake_kie.reply_create(body_code=402)

    with pytest.raises(ProviderError) as caught:
        await make_kie().submit(job())

    assert caught.value.retry_after is not None and caught.value.retry_after >= 60


async def test_http_429_honours_retry_after(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    fake_kie.reply_create(http_status=429, body_code=429, headers={"Retry-After": "7"})

    with pytest.raises(ProviderError) as caught:
        await make_kie().submit(job())

    assert (caught.value.code, caught.value.retryable, caught.value.retry_after) == ("KIE_RATE_LIMITED", True, 7.0)


@pytest.mark.parametrize(
    ("http_status", "raw", "error_code", "retryable"),
    [
        (502, b"<html>bad gateway</html>", "KIE_HTTP_502", True),
        (500, b"", "KIE_SERVER_ERROR", True),
        (401, b"", "KIE_UNAUTHORIZED", False),
        (200, b"not json at all", "PROVIDER_BAD_RESPONSE", True),
        (200, b'{"code": 200, "msg": "ok", "data": {}}', "PROVIDER_BAD_RESPONSE", True),
    ],
)
async def test_non_json_and_http_errors(
    fake_kie: FakeKie, make_kie: MakeKie, http_status: int, raw: bytes, error_code: str, retryable: bool
) -> None:
    fake_kie.reply_create(http_status=http_status, raw=raw)

    with pytest.raises(ProviderError) as caught:
        await make_kie().submit(job())

    assert (caught.value.code, caught.value.retryable) == (error_code, retryable)


async def test_wrong_api_key_is_permanent(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    with pytest.raises(ProviderError) as caught:
        await make_kie(api_key="wrong").submit(job())

    assert (caught.value.code, caught.value.retryable) == ("KIE_UNAUTHORIZED", False)


async def test_slow_answer_times_out_as_retryable(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    fake_kie.reply_create(delay=1.0)

    async with httpx.AsyncClient(timeout=httpx.Timeout(0.2)) as impatient:
        with pytest.raises(ProviderError) as caught:
            await make_kie(client=impatient).submit(job())

    assert (caught.value.code, caught.value.retryable) == ("PROVIDER_TIMEOUT", True)


async def test_unreachable_server_is_retryable(make_kie: MakeKie) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]

    with pytest.raises(ProviderError) as caught:
        await make_kie(base_url=f"http://127.0.0.1:{closed_port}").status("task_x")

    assert (caught.value.code, caught.value.retryable) == ("PROVIDER_UNAVAILABLE", True)


async def test_missing_api_key_is_not_configured_and_calls_nothing(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    kie = make_kie(api_key="")
    for call in (kie.submit(job()), kie.status("task_x")):
        with pytest.raises(ProviderError) as caught:
            await call
        assert (caught.value.code, caught.value.retryable) == ("PROVIDER_NOT_CONFIGURED", False)

    assert fake_kie.create_calls == [] and fake_kie.record_calls == 0


async def test_cancel_is_unsupported_and_a_no_op(make_kie: MakeKie) -> None:
    kie = make_kie()

    assert kie.supports_cancel is False
    await kie.cancel("task_x")


# ------------------------------------------------------------------ download


@pytest.mark.parametrize(
    ("file_status", "error_code", "retryable"),
    [(404, "OUTPUT_EXPIRED", False), (410, "OUTPUT_EXPIRED", False), (503, "OUTPUT_UNAVAILABLE", True)],
)
async def test_download_errors(
    fake_kie: FakeKie, make_kie: MakeKie, file_status: int, error_code: str, retryable: bool
) -> None:
    fake_kie.file_status = file_status

    with pytest.raises(ProviderError) as caught:
        await download_all(make_kie(), fake_kie.result_url("task_x"))

    assert (caught.value.code, caught.value.retryable) == (error_code, retryable)


async def test_slow_download_times_out_as_retryable(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    fake_kie.file_delay = 1.0

    async with httpx.AsyncClient(timeout=httpx.Timeout(0.2)) as impatient:
        with pytest.raises(ProviderError) as caught:
            await download_all(make_kie(client=impatient), fake_kie.result_url("task_x"))

    assert (caught.value.code, caught.value.retryable) == ("PROVIDER_TIMEOUT", True)


# ------------------------------------------------------------------ callbacks


def callback(
    clock: FakeClock, task_id: str = "task_abc", *, wrapped: bool = True, age: float = 0, **record: Any
) -> tuple[dict[str, str], bytes]:
    data = {"taskId": task_id, "state": "success", "resultJson": json.dumps({"resultUrls": ["https://cdn/x.png"]})}
    data.update(record)
    body = {"code": 200, "msg": "Playground task completed successfully.", "data": data} if wrapped else data
    timestamp = str(int(clock() - age))
    headers = {"X-Webhook-Timestamp": timestamp, "X-Webhook-Signature": sign(SECRET, task_id, timestamp)}
    return headers, json.dumps(body).encode()


@pytest.mark.parametrize("wrapped", [True, False])
async def test_valid_callback_is_decoded(make_kie: MakeKie, clock: FakeClock, wrapped: bool) -> None:
    headers, body = callback(clock, wrapped=wrapped)

    decoded = make_kie().parse_callback(headers, body)

    assert decoded.external_id == "task_abc"
    assert decoded.status.state == "succeeded"
    assert decoded.status.output_urls == ("https://cdn/x.png",)


async def test_callback_headers_are_case_insensitive(make_kie: MakeKie, clock: FakeClock) -> None:
    headers, body = callback(clock)
    lowered = {key.lower(): value for key, value in headers.items()}

    assert make_kie().parse_callback(lowered, body).external_id == "task_abc"


async def test_failed_task_callback(make_kie: MakeKie, clock: FakeClock) -> None:
    headers, body = callback(clock, state="fail", resultJson=None, failCode="501", failMsg="boom")

    status = make_kie().parse_callback(headers, body).status

    assert (status.state, status.error_code, status.error_message) == ("failed", "KIE_501", "boom")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h: {**h, "X-Webhook-Signature": "AAAA" + h["X-Webhook-Signature"][4:]},
        lambda h: {**h, "X-Webhook-Signature": ""},
        lambda h: {k: v for k, v in h.items() if k != "X-Webhook-Signature"},
        lambda h: {k: v for k, v in h.items() if k != "X-Webhook-Timestamp"},
        lambda h: {**h, "X-Webhook-Timestamp": str(int(h["X-Webhook-Timestamp"]) + 1)},
        lambda h: {**h, "X-Webhook-Timestamp": "yesterday"},
    ],
    ids=["bad-signature", "empty-signature", "no-signature", "no-timestamp", "other-timestamp", "bad-timestamp"],
)
async def test_forged_callbacks_are_refused(
    make_kie: MakeKie, clock: FakeClock, tamper: Callable[[dict[str, str]], dict[str, str]]
) -> None:
    headers, body = callback(clock)

    with pytest.raises(PermissionError):
        make_kie().parse_callback(tamper(headers), body)


async def test_signature_for_another_task_is_refused(make_kie: MakeKie, clock: FakeClock) -> None:
    headers, _ = callback(clock, "task_signed")
    _, body = callback(clock, "task_other")

    with pytest.raises(PermissionError):
        make_kie().parse_callback(headers, body)


@pytest.mark.parametrize(("age", "accepted"), [(299, True), (-299, True), (301, False), (-301, False), (86400, False)])
async def test_replay_window(make_kie: MakeKie, clock: FakeClock, age: float, accepted: bool) -> None:
    headers, body = callback(clock, age=age)
    kie = make_kie(tolerance_seconds=300)

    if accepted:
        assert kie.parse_callback(headers, body).external_id == "task_abc"
    else:
        with pytest.raises(PermissionError):
            kie.parse_callback(headers, body)


async def test_callbacks_are_refused_without_a_secret(make_kie: MakeKie, clock: FakeClock) -> None:
    headers, body = callback(clock)

    with pytest.raises(PermissionError):
        make_kie(callback_secret="").parse_callback(headers, body)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"code": 200, "data": {"state": "success"}}', b'{"taskId": "task_abc", "state": "odd"}'],
    ids=["not-json", "not-object", "no-task-id", "unknown-state"],
)
async def test_malformed_callback_bodies_are_value_errors(make_kie: MakeKie, clock: FakeClock, body: bytes) -> None:
    headers, _ = callback(clock)

    with pytest.raises(ValueError):
        make_kie().parse_callback(headers, body)


# ------------------------------------------------------------------ rate limit


class CountingLimiter(MemoryRateLimiter):
    """Counts every hit taken (allowed), by bucket."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: dict[str, int] = {}

    async def hit_all(self, buckets: Sequence[RateBucket]) -> int:
        wait = await super().hit_all(buckets)
        if not wait:
            for bucket in buckets:
                self.taken[bucket.name] = self.taken.get(bucket.name, 0) + 1
        return wait


async def routed_kie_submits(kie: KieProvider, limiter: CountingLimiter, count: int, limit: ProviderLimit) -> list[str]:
    """`count` generations of a one-route KIE model submitted at once through routed submission."""
    env = Env()
    ports = dataclasses.replace(env.ports, providers=Providers(kie), limiter=limiter)
    policy = dataclasses.replace(env.policy, provider_limits={"kie": limit}, provider_rate_wait_seconds=10.0)
    owner = env.fakes.user(balance=1000)
    model = env.fakes.model(provider="kie", providerModel="google/nano-banana")
    generations = [env.fakes.generation(owner, model, GenerationStatus.SUBMITTING) for _ in range(count)]
    done = await asyncio.gather(
        *(
            submit_routes(ports, policy, g, model, 1, lambda route, p, i=i: job(f"prompt {i}"))
            for i, g in enumerate(generations)
        )
    )
    assert all(r.error is None for r in done), [r.error for r in done]
    return [r.external_id or "" for r in done]


async def test_one_kie_submit_counts_once_against_one_rate(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    # given KIE's rate (5 per second here; 18 per 10 s by default), counted by routed submission only
    limiter = CountingLimiter()
    task_ids = await routed_kie_submits(make_kie(), limiter, 12, ProviderLimit(rate=5, window_seconds=1))
    # then every submit waited for its slot and succeeded
    assert len(set(task_ids)) == 12
    # and each counted once, in one bucket: the adapter keeps no limiter of its own
    assert limiter.taken == {"provider-submits:kie": 12}
    # and KIE never got more than five creates in a second
    arrivals = sorted(call.at for call in fake_kie.create_calls)
    for i, start in enumerate(arrivals):
        # A little slack for the hop between the limiter and the server.
        assert sum(1 for t in arrivals[i:] if t - start < 1 - 0.05) <= 5
    assert arrivals[-1] - arrivals[0] >= 2 - 0.1  # 12 calls need three windows


async def test_the_kie_adapter_itself_never_waits_nor_refuses_for_a_rate(fake_kie: FakeKie, make_kie: MakeKie) -> None:
    kie = make_kie()
    task_ids = await asyncio.gather(*(kie.submit(job(f"prompt {i}")) for i in range(25)))
    assert len(set(task_ids)) == 25 and len(fake_kie.create_calls) == 25
