"""The lifecycle through the Redis broker and real `genhub worker` / `genhub scheduler` subprocesses."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from taskiq.kicker import AsyncKicker

from domain.credits import LedgerKind
from domain.generations import GenerationStatus
from tests.fixtures.fake_kie import FakeKie
from tests.integration.workers.conftest import Processes, worker_processes
from tests.integration.workers.world import COST, GRANT, World

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def workers(worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with worker_processes(worker_env, tmp_path_factory.mktemp("logs")) as procs:
        yield procs


@pytest.fixture
async def world(workers: Processes, world_in: Any) -> Any:
    async with world_in(workers.env) as world:
        yield world


def kinds(entries: list[Any], generation_id: uuid.UUID) -> list[LedgerKind]:
    return sorted(e.kind for e in entries if e.generation_id == generation_id)


async def test_generation_succeeds_with_output_asset_and_captured_credits(world: World, workers: Processes) -> None:
    # given a simulated model
    model = await world.model("sim-ok")
    # when a generation is started (QUEUED, submit enqueued to Redis)
    started = await world.generate(model)
    assert started.status is GenerationStatus.QUEUED
    # then the worker takes it to SUCCEEDED
    final = await world.wait_final(started.id)
    assert final.status is GenerationStatus.SUCCEEDED, workers.logs()
    assert final.progress == 1.0 and final.charged_credits == COST and final.provider_task_id
    # with the output copied into our storage
    assets = await world.assets(final.id)
    assert [(a.kind, a.content_type) for a in assets] == [("output", "image/png")]
    head = await world.container.storage.head(assets[0].object_key)
    assert head is not None and head.size == assets[0].size > 0
    # and the cost captured once, nothing left reserved
    assert kinds(await world.ledger(), final.id) == [LedgerKind.CAPTURE, LedgerKind.RESERVE]
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT - COST, 0)


async def test_provider_failure_ends_failed_with_credits_released(world: World, workers: Processes) -> None:
    # given a simulated model
    model = await world.model("sim-fail")
    # when the provider fails the job
    started = await world.generate(model, prompt="a fox [fail]")
    final = await world.wait_final(started.id)
    # then the generation is FAILED with the provider's error, and the hold is released
    assert final.status is GenerationStatus.FAILED, workers.logs()
    assert final.error_code == "SIMULATED_FAILURE" and final.error_message
    assert kinds(await world.ledger(), final.id) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT, 0)


async def test_rejected_prompt_fails_at_once_without_retries(world: World, workers: Processes) -> None:
    # given a simulated model
    model = await world.model("sim-reject")
    # when the provider rejects the prompt (a permanent error)
    started = await world.generate(model, prompt="[reject] something")
    final = await world.wait_final(started.id)
    # then it fails on the first attempt with the provider's code
    assert final.status is GenerationStatus.FAILED
    assert (final.error_code, final.submit_attempts) == ("CONTENT_POLICY", 1)
    account, _ = await world.balance()
    assert account.reserved == 0 and account.balance == GRANT


async def test_transient_submit_errors_retry_with_backoff_then_succeed(world: World, workers: Processes) -> None:
    # given a provider that fails the first two submits transiently
    model = await world.model("sim-transient")
    # when the generation runs
    started = await world.generate(model, prompt="a fox [transient:2]")
    final = await world.wait_final(started.id)
    # then the third attempt succeeds
    assert final.status is GenerationStatus.SUCCEEDED, workers.logs()
    assert final.submit_attempts == 3
    account, ledger = await world.balance()
    assert account == ledger and account.reserved == 0


async def test_hang_ends_expired_with_credits_released(world: World, workers: Processes) -> None:
    # given a model whose deadline is 2 seconds
    model = await world.model("sim-hang", deadlineSeconds=2)
    # when the provider never finishes
    started = await world.generate(model, prompt="a fox [hang]")
    final = await world.wait_final(started.id, timeout=15)
    # then the sweep expires it and releases the hold
    assert final.status is GenerationStatus.EXPIRED, workers.logs()
    assert final.error_code == "DEADLINE_EXCEEDED"
    assert kinds(await world.ledger(), final.id) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT, 0)


# ------------------------------------------------------------------ KIE.ai against the fake server


async def test_kie_success_copies_every_output(world: World, workers: Processes, fake_kie: FakeKie) -> None:
    # given KIE answers with two result files
    fake_kie.result_count = 2
    model = await world.model("kie-ok", provider="kie", providerModel="fake/model")
    # when the generation runs
    started = await world.generate(model)
    final = await world.wait_final(started.id)
    # then both outputs are copied into our storage byte for byte
    assert final.status is GenerationStatus.SUCCEEDED, workers.logs()
    assets = await world.assets(final.id)
    assert [a.position for a in assets] == [0, 1]
    for asset in assets:
        data = b"".join([chunk async for chunk in world.container.storage.open_read(asset.object_key)])
        assert data == fake_kie.png
    # and createTask got the provider's model name, the prompt and our callback URL
    body = fake_kie.create_calls[0].body
    assert body["model"] == "fake/model" and body["input"]["prompt"] == "a red fox"
    assert "_attempt" not in body["input"]
    assert urlsplit(body["callBackUrl"]).path.endswith("/providers/kie/callback")  # its query names the generation
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT - COST, 0)


@pytest.mark.parametrize(("body_code", "error_code"), [(422, "KIE_VALIDATION"), (401, "KIE_UNAUTHORIZED")])
async def test_kie_permanent_error_fails_at_once(
    world: World, workers: Processes, fake_kie: FakeKie, body_code: int, error_code: str
) -> None:
    # given KIE refuses the task with a permanent body code
    fake_kie.reply_create(body_code=body_code, msg="prompt is not allowed")
    model = await world.model("kie-permanent", provider="kie")
    # when the generation runs
    final = await world.wait_final((await world.generate(model)).id)
    # then it fails on the first attempt with KIE's code and message mapped
    assert final.status is GenerationStatus.FAILED, workers.logs()
    assert (final.error_code, final.error_message, final.submit_attempts) == (error_code, "prompt is not allowed", 1)
    assert len(fake_kie.create_calls) == 1
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT, 0)


async def test_kie_transient_errors_back_off_then_succeed(world: World, workers: Processes, fake_kie: FakeKie) -> None:
    # given KIE answers 500, then 429 (rate limited), then accepts
    fake_kie.reply_create(http_status=500, body_code=500, msg="server error")
    fake_kie.reply_create(body_code=429, msg="too many requests")
    model = await world.model("kie-transient", provider="kie")
    # when the generation runs
    final = await world.wait_final((await world.generate(model)).id)
    # then the third createTask succeeds, each retry after a backoff
    assert final.status is GenerationStatus.SUCCEEDED, workers.logs()
    assert final.submit_attempts == 3
    arrivals = [call.at for call in fake_kie.create_calls]
    assert len(arrivals) == 3
    assert all(later - earlier >= 0.1 for earlier, later in zip(arrivals, arrivals[1:], strict=False))
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT - COST, 0)


async def test_kie_failed_task_ends_failed_with_kie_code(world: World, workers: Processes, fake_kie: FakeKie) -> None:
    # given KIE accepts the task and later reports it failed
    fake_kie.states = ["generating", "fail"]
    fake_kie.fail_code, fake_kie.fail_msg = "501", "Generation failed"
    model = await world.model("kie-fail", provider="kie")
    # when the generation runs
    final = await world.wait_final((await world.generate(model)).id)
    # then the failure is mapped into the generation's error
    assert final.status is GenerationStatus.FAILED, workers.logs()
    assert (final.error_code, final.error_message) == ("KIE_501", "Generation failed")
    account, _ = await world.balance()
    assert (account.balance, account.reserved) == (GRANT, 0)


# ------------------------------------------------------------------ duplicate delivery


class NoJobs:
    """A JobQueue that drops everything: the test kicks the messages itself."""

    async def enqueue(self, task_name: str, **kwargs: Any) -> None:
        return None


async def test_same_submit_message_delivered_twice_submits_and_captures_once(world: World, workers: Processes) -> None:
    # given a QUEUED generation whose submit message was not sent yet
    model = await world.model("sim-dup")
    world.container = dataclasses.replace(world.container, jobs=NoJobs())
    started = await world.generate(model)
    # when the very same message (same task id) reaches the broker twice
    kicker = AsyncKicker(task_name="submit_generation", broker=world.container.broker, labels={})
    kicker = kicker.with_task_id(uuid.uuid4().hex)
    await asyncio.gather(kicker.kiq(generation_id=str(started.id)), kicker.kiq(generation_id=str(started.id)))
    final = await world.wait_final(started.id)
    # then the provider got one job and the cost was captured once
    assert final.status is GenerationStatus.SUCCEEDED, workers.logs()
    assert final.submit_attempts == 1
    async with world.container.uow() as uow:
        tasks = await uow.session.execute(  # type: ignore[attr-defined]
            text("select count(*) from provider_tasks where generation_id = :g"), {"g": started.id}
        )
        assert tasks.scalar_one() == 1
    assert kinds(await world.ledger(), final.id) == [LedgerKind.CAPTURE, LedgerKind.RESERVE]
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT - COST, 0)
