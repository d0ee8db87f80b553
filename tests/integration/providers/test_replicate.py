"""Replicate provider against the fake Replicate server over real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from domain.ports import JobSearch, ProviderError, ProviderJob
from infrastructure.providers.replicate import WEBHOOK_EVENTS, ReplicateProvider
from infrastructure.providers.replicate_lookup import MAX_PAGES
from tests.fixtures.fake_replicate import VERSION_ID
from tests.integration.providers.pngcheck import assert_valid_png

if TYPE_CHECKING:
    from tests.fixtures.fake_replicate import FakeReplicate

pytest_plugins = ["tests.fixtures.fake_replicate"]

MakeReplicate = Callable[..., ReplicateProvider]
CALLBACK = "https://genhub.example/providers/replicate/callback"


def job(provider_model: str = "black-forest-labs/flux-schnell", **overrides: Any) -> ProviderJob:
    fields: dict[str, Any] = {
        "generation_id": uuid.uuid4(),
        "provider_model": provider_model,
        "prompt": "a koi pond",
        "params": {"aspect_ratio": "1:1"},
    }
    fields.update(overrides)
    return ProviderJob(**fields)


@pytest.fixture
def make_replicate(fake_replicate: FakeReplicate, http_client: httpx.AsyncClient) -> MakeReplicate:
    def make(**overrides: Any) -> ReplicateProvider:
        options: dict[str, Any] = {
            "base_url": fake_replicate.base_url,
            "api_token": fake_replicate.token,
            "webhook_secret": fake_replicate.webhook_secret,
            "client": http_client,
        }
        options.update(overrides)
        return ReplicateProvider(**options)

    return make


async def download_all(provider: ReplicateProvider, url: str) -> bytes:
    return b"".join([chunk async for chunk in provider.download(url)])


async def test_create_by_model_poll_and_download(fake_replicate: FakeReplicate, make_replicate: MakeReplicate) -> None:
    # given a prediction with params, genhub's own params, one input file, a webhook and a deadline
    replicate = make_replicate()
    deadline = datetime.now(UTC) + timedelta(seconds=120)
    prediction_id = await replicate.submit(
        job(
            params={"aspect_ratio": "16:9", "_attempt": 2},
            input_urls=["https://cdn.example/in.png"],
            callback_url=CALLBACK,
            deadline_at=deadline,
        )
    )
    # then it was created by model, with the token, the input mapped, the webhook and Cancel-After
    call = fake_replicate.create_calls[0]
    assert call.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert call.headers["authorization"] == f"Bearer {fake_replicate.token}"
    assert call.body["input"] == {"aspect_ratio": "16:9", "prompt": "a koi pond", "image": "https://cdn.example/in.png"}
    assert call.body["webhook"] == CALLBACK and call.body["webhook_events_filter"] == ["start", "completed"]
    assert "version" not in call.body and "prefer" not in call.headers
    assert 115 <= int(call.headers["cancel-after"].removesuffix("s")) <= 120
    # and it is followed to its output, fetched without the token from another origin
    states = [(await replicate.status(prediction_id)).state for _ in range(3)]
    assert states == ["pending", "running", "succeeded"]
    final = await replicate.status(prediction_id)
    assert list(final.output_urls) == [fake_replicate.file_url(prediction_id, 0)]
    assert_valid_png(await download_all(replicate, final.output_urls[0]))
    assert fake_replicate.file_authorizations == [None]


@pytest.mark.parametrize("reference", [f"stability-ai/sdxl:{VERSION_ID}", VERSION_ID])
async def test_create_by_version(fake_replicate: FakeReplicate, make_replicate: MakeReplicate, reference: str) -> None:
    await make_replicate().submit(job(reference, input_urls=["https://a/1.png", "https://a/2.png"]))
    call = fake_replicate.create_calls[0]
    assert call.path == "/v1/predictions" and call.body["version"] == VERSION_ID
    assert call.body["input"]["image_input"] == ["https://a/1.png", "https://a/2.png"]
    assert "webhook" not in call.body and "cancel-after" not in call.headers


async def test_no_webhook_without_a_secret(fake_replicate: FakeReplicate, make_replicate: MakeReplicate) -> None:
    await make_replicate(webhook_secret="").submit(job(callback_url=CALLBACK))
    assert "webhook" not in fake_replicate.create_calls[0].body


async def test_token_goes_only_to_the_api_origin(fake_replicate: FakeReplicate, make_replicate: MakeReplicate) -> None:
    # given outputs served from the API's own origin
    fake_replicate.output_on_api_origin = True
    replicate = make_replicate()
    await download_all(replicate, f"{fake_replicate.base_url}/files/p/out-0.png")
    await download_all(replicate, f"{fake_replicate.delivery_url}/files/p/out-0.png")
    assert fake_replicate.file_authorizations == [f"Bearer {fake_replicate.token}", None]


@pytest.mark.parametrize("shape", ["string", "list", "object"])
async def test_output_shapes(fake_replicate: FakeReplicate, make_replicate: MakeReplicate, shape: str) -> None:
    fake_replicate.output_shape, fake_replicate.result_count = shape, 2
    fake_replicate.statuses = ["succeeded"]
    replicate = make_replicate()
    prediction_id = await replicate.submit(job())
    urls = list((await replicate.status(prediction_id)).output_urls)
    expected = [fake_replicate.file_url(prediction_id, i) for i in range(2)]
    assert urls == (expected[:1] if shape == "string" else expected)


async def test_failed_canceled_and_aborted(fake_replicate: FakeReplicate, make_replicate: MakeReplicate) -> None:
    replicate = make_replicate()
    fake_replicate.statuses = ["failed"]
    failed = await replicate.status(await replicate.submit(job()))
    assert (failed.state, failed.error_code, failed.error_message) == (
        "failed",
        "REPLICATE_FAILED",
        fake_replicate.error,
    )
    fake_replicate.statuses = ["starting"]
    prediction_id = await replicate.submit(job())
    await replicate.cancel(prediction_id)
    assert fake_replicate.cancel_calls == [prediction_id]
    canceled = await replicate.status(prediction_id)
    assert (canceled.state, canceled.error_code) == ("failed", "REPLICATE_CANCELED")
    await replicate.cancel(prediction_id)  # canceling an ended prediction is harmless
    await replicate.cancel("unknownprediction")  # so is an unknown one
    fake_replicate.statuses = ["aborted"]
    aborted = await replicate.status(await replicate.submit(job()))
    assert (aborted.state, aborted.error_code) == ("failed", "PROVIDER_ABORTED")


async def test_cancel_after_expiry_aborts_a_prediction_that_never_started(
    fake_replicate: FakeReplicate, make_replicate: MakeReplicate
) -> None:
    # given a prediction stuck in the queue whose Cancel-After is the minimum
    fake_replicate.statuses = ["starting"]
    clock = [time.time()]
    replicate = make_replicate(clock=lambda: clock[0])
    prediction_id = await replicate.submit(job(deadline_at=datetime.fromtimestamp(clock[0] + 1, UTC)))
    assert fake_replicate.create_calls[0].headers["cancel-after"] == "5s"
    # when the fake's clock passes it (moved, not waited for)
    fake_replicate.predictions[prediction_id].cancel_at = time.monotonic() - 1
    # then it is aborted: nothing ran
    assert (await replicate.status(prediction_id)).error_code == "PROVIDER_ABORTED"


async def test_past_deadline_is_not_submitted(fake_replicate: FakeReplicate, make_replicate: MakeReplicate) -> None:
    with pytest.raises(ProviderError) as caught:
        await make_replicate().submit(job(deadline_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert (caught.value.code, caught.value.retryable) == ("DEADLINE_EXCEEDED", False)
    assert fake_replicate.create_calls == []


# ------------------------------------------------------------------ errors


async def test_rate_limited_answer_is_retryable_with_its_wait(
    fake_replicate: FakeReplicate, make_replicate: MakeReplicate
) -> None:
    fake_replicate.reply_create(status=429, detail="Request was throttled. Expected available in 4 seconds.")
    fake_replicate.reply_create(status=429, detail="throttled", headers={"Retry-After": "2"})
    replicate = make_replicate()
    for expected in (4.0, 2.0):
        with pytest.raises(ProviderError) as caught:
            await replicate.submit(job())
        assert (caught.value.code, caught.value.retryable, caught.value.retry_after) == (
            "REPLICATE_RATE_LIMITED",
            True,
            expected,
        )


@pytest.mark.parametrize(
    ("reply", "code", "retryable"),
    [
        ({"status": 422, "detail": "- input.prompt: Invalid type"}, "REPLICATE_INVALID_INPUT", False),
        ({"status": 401, "detail": "bad token"}, "REPLICATE_UNAUTHORIZED", False),
        ({"status": 503, "detail": "unavailable"}, "REPLICATE_SERVER_ERROR", True),
        ({"status": 201, "raw": b"<html>not json</html>"}, "PROVIDER_BAD_RESPONSE", True),
        ({"status": 201, "raw": b'{"id": "../x", "status": "starting"}'}, "PROVIDER_BAD_RESPONSE", True),
        ({"status": 201, "raw": b'{"id": "abc", "status": "dreaming"}'}, "PROVIDER_BAD_RESPONSE", True),
    ],
)
async def test_error_answers_on_create(
    fake_replicate: FakeReplicate, make_replicate: MakeReplicate, reply: dict[str, Any], code: str, retryable: bool
) -> None:
    fake_replicate.reply_create(**reply)
    with pytest.raises(ProviderError) as caught:
        await make_replicate().submit(job())
    assert (caught.value.code, caught.value.retryable) == (code, retryable)


async def test_bad_get_answers_and_ids(fake_replicate: FakeReplicate, make_replicate: MakeReplicate) -> None:
    replicate = make_replicate()
    prediction_id = await replicate.submit(job())
    fake_replicate.reply_get(status=200, raw=json.dumps({"id": "someoneelse", "status": "succeeded"}).encode())
    with pytest.raises(ProviderError) as caught:
        await replicate.status(prediction_id)
    assert caught.value.code == "PROVIDER_BAD_RESPONSE"
    with pytest.raises(ProviderError) as caught:
        await replicate.status("../../v1/account")
    assert caught.value.code == "REPLICATE_BAD_ID" and fake_replicate.get_calls == [prediction_id]
    with pytest.raises(ProviderError) as caught:
        await replicate.submit(job("not a model"))
    assert (caught.value.code, caught.value.retryable) == ("REPLICATE_BAD_MODEL", False)


async def test_without_a_token_it_is_not_configured(make_replicate: MakeReplicate) -> None:
    with pytest.raises(ProviderError) as caught:
        await make_replicate(api_token="").submit(job())
    assert (caught.value.code, caught.value.retryable) == ("PROVIDER_NOT_CONFIGURED", False)


async def test_unreachable_api_is_retryable(make_replicate: MakeReplicate) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderError) as caught:
        await make_replicate(base_url=f"http://127.0.0.1:{port}").submit(job())
    assert (caught.value.code, caught.value.retryable) == ("PROVIDER_UNAVAILABLE", True)


async def test_webhook_of_the_fake_verifies(fake_replicate: FakeReplicate, make_replicate: MakeReplicate) -> None:
    fake_replicate.statuses = ["succeeded"]
    replicate = make_replicate()
    prediction_id = await replicate.submit(job())
    await replicate.status(prediction_id)
    headers, body = fake_replicate.signed_webhook(prediction_id)
    callback = replicate.parse_callback(headers, body)
    assert callback.external_id == prediction_id and callback.status.state == "succeeded"


async def test_find_job_walks_the_list_back_to_the_generations_prediction(
    fake_replicate: FakeReplicate, make_replicate: MakeReplicate
) -> None:
    # given a prediction created for a generation, then newer ones of other generations, one list item a page
    replicate = make_replicate()
    began = datetime.now(UTC) - timedelta(seconds=5)
    ours = job(prompt="the one we lost", callback_url=None)
    created = await replicate.submit(ours)
    for prompt in ("later one", "later two"):
        await asyncio.sleep(0.002)  # distinct creation times, newest first
        await replicate.submit(job(prompt=prompt))
    fake_replicate.page_size = 1
    # when it is looked up
    found = await replicate.find_job(ours, since=began)
    # then the list was walked page by page to it, the whole list read
    assert found == JobSearch(candidates=(created,), complete=True) and fake_replicate.list_calls == 3
    # and a job nobody created is not found, the walk ending at the last page
    assert await replicate.find_job(job(prompt="never sent"), since=began) == JobSearch((), complete=True)


async def test_find_job_that_stops_at_its_page_cap_is_inconclusive(
    fake_replicate: FakeReplicate, make_replicate: MakeReplicate
) -> None:
    # given more predictions since the uncertain submit than the walk reads (a busy account)
    replicate = make_replicate()
    began = datetime.now(UTC) - timedelta(seconds=5)
    ours = job(prompt="the one we lost", callback_url=None)
    await replicate.submit(ours)
    for n in range(MAX_PAGES):
        await asyncio.sleep(0.002)
        await replicate.submit(job(prompt=f"later {n}"))
    fake_replicate.page_size = 1
    # when it is looked up: nothing found, and not proven absent either
    assert await replicate.find_job(ours, since=began) == JobSearch((), complete=False)
    assert fake_replicate.list_calls == MAX_PAGES


async def test_find_job_lists_every_match_and_asks_for_the_start_webhook(
    fake_replicate: FakeReplicate, make_replicate: MakeReplicate
) -> None:
    replicate = make_replicate()
    began = datetime.now(UTC) - timedelta(seconds=5)
    same = job(prompt="the same preset", callback_url=None)
    first = await replicate.submit(same)
    await asyncio.sleep(0.002)
    second = await replicate.submit(same)
    assert await replicate.find_job(same, since=began) == JobSearch((second, first), complete=True)
    assert "start" in WEBHOOK_EVENTS


async def test_find_job_stops_at_predictions_older_than_the_generation(
    fake_replicate: FakeReplicate, make_replicate: MakeReplicate
) -> None:
    replicate = make_replicate()
    old = job(prompt="same words")
    await replicate.submit(old)
    fake_replicate.page_size = 1
    # a prediction with the same input made before the generation began is not its job
    assert await replicate.find_job(old, since=datetime.now(UTC) + timedelta(seconds=1)) == JobSearch((), True)
    assert fake_replicate.list_calls == 1


@pytest.mark.parametrize("body", [{"next": None}, {"results": None}, {"results": {"id": "x"}}, {"detail": "busy"}])
async def test_find_job_refuses_a_list_answer_without_results(
    fake_replicate: FakeReplicate, make_replicate: MakeReplicate, body: dict[str, Any]
) -> None:
    # given a list answer that is JSON but no page (no `results` list)
    replicate = make_replicate()
    fake_replicate.list_body = body
    # then it is a bad answer, never a complete list proving the job absent (that would send it again)
    with pytest.raises(ProviderError) as refused:
        await replicate.find_job(job(prompt="lost"), since=datetime.now(UTC) - timedelta(seconds=5))
    assert refused.value.code == "PROVIDER_BAD_RESPONSE" and refused.value.retryable


async def test_find_job_with_a_removed_input_of_the_model_is_inconclusive(
    fake_replicate: FakeReplicate, make_replicate: MakeReplicate
) -> None:
    # given a prediction of the model since the uncertain submit whose input Replicate removed
    replicate = make_replicate()
    began = datetime.now(UTC) - timedelta(seconds=5)
    removed = await replicate.submit(job(prompt="the one we lost", callback_url=None))
    fake_replicate.data_removed.add(removed)
    # when it is looked up: nothing matches, and the job is not proven absent either
    assert await replicate.find_job(job(prompt="the one we lost"), since=began) == JobSearch((), complete=False)
    # while one of another model, or one older than the submit, proves nothing either way
    other = job(provider_model="someone/else", prompt="the one we lost")
    assert await replicate.find_job(other, since=began) == JobSearch((), complete=True)
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert await replicate.find_job(job(prompt="the one we lost"), since=later) == JobSearch((), complete=True)
