"""Finalization verifies a provider's outputs before storing them: sniffed types, refusals, nothing partial."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.credits import LedgerKind
from domain.events import GenerationChanged
from domain.generations import Generation, GenerationStatus
from domain.media import ALLOWED_TYPES, MAX_OUTPUTS, REJECTION_CODES, MediaLimits, extension_for
from domain.ports import ProviderStatus
from domain.use_cases import finalization
from domain.use_cases.thumbnails import THUMBNAIL_TASK
from tests.unit.processing_fakes import COST, Env

S = GenerationStatus
PNG = b"\x89PNG\r\n\x1a\n 1024x1024 fox"
JPEG = b"\xff\xd8\xff\xe0 768x512 fox"
HTML = b"<!DOCTYPE html><html><script>steal()</script></html>"


@pytest.fixture
def env() -> Env:
    return Env()


def finished(env: Env, *bodies: bytes, urls: list[str] | None = None) -> Generation:
    """A PROCESSING generation whose provider finished with outputs `bodies` (all URLs ending in .png)."""
    urls = urls or [f"https://cdn.test/{i}.png" for i in range(len(bodies))]
    env.provider.bodies.update(zip(urls, bodies, strict=True))
    env.provider.status_of = ProviderStatus(state="succeeded", progress=1.0, output_urls=tuple(urls))
    return env.generation(S.PROCESSING, provider_task_id="t")


def outputs_of(env: Env, g: Generation) -> list[str]:
    return sorted(k for k in env.storage.objects if k.startswith(f"outputs/{g.user_id}/{g.id}/"))


def assert_failed_and_released(env: Env, g: Generation, code: str) -> None:
    after = env.get(g)
    assert (after.status, after.error_code, after.charged_credits) == (S.FAILED, code, 0)
    assert after.error_message
    assert env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    assert (env.account(g).balance, env.account(g).reserved) == (100, 0)
    assert outputs_of(env, g) == [] and env.store.assets == []
    assert env.jobs.kicked == []  # no thumbnails for a failure
    assert env.media.open == 0


async def test_an_output_is_stored_under_the_type_its_bytes_have_not_the_one_its_url_claims(env: Env) -> None:
    # given an output whose URL says PNG but whose bytes are a JPEG
    g = finished(env, JPEG)
    # when it is finalized
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    # then it is stored as a JPEG, with its geometry, size and hash
    (asset,) = env.store.assets
    assert asset.object_key == f"outputs/{g.user_id}/{g.id}/0.jpg"
    assert (asset.content_type, asset.width, asset.height, asset.size) == ("image/jpeg", 768, 512, len(JPEG))
    assert env.storage.content_types[asset.object_key] == "image/jpeg"
    assert env.storage.objects[asset.object_key] == JPEG
    # and the outputs were spooled with the policy's limits
    assert env.media.limits_seen == [env.policy.media_limits] and env.media.open == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (HTML, "OUTPUT_UNSUPPORTED_TYPE"),
        (b"", "OUTPUT_EMPTY"),
        (PNG + b" TRUNCATED", "OUTPUT_TRUNCATED"),
        (PNG + b" BOMB", "OUTPUT_TOO_MANY_PIXELS"),
        (PNG + b" " * 100, "OUTPUT_TOO_LARGE"),
    ],
)
async def test_a_refused_output_fails_the_generation_with_its_code_and_releases_the_hold(
    env: Env, body: bytes, code: str
) -> None:
    # given outputs that are no media we store (or larger than the 64-byte cap)
    g = finished(env, body)
    policy = dataclasses.replace(env.policy, media_limits=MediaLimits(max_bytes=64))
    # when it is finalized
    await finalization.refresh(g.id, ports=env.ports, policy=policy)
    # then it failed with the refusal's code, the whole hold released, nothing stored
    assert_failed_and_released(env, g, code)
    events = [e for e in env.publisher.events if isinstance(e, GenerationChanged)]
    assert [(e.previous_status, e.status) for e in events] == [(S.PROCESSING, S.FAILED)]


async def test_an_answer_with_too_many_outputs_fails_before_any_is_fetched(env: Env) -> None:
    # given a provider that answered with one URL more than a generation may have
    g = finished(env, *[PNG] * (MAX_OUTPUTS + 1))
    # when it is finalized
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    # then it failed with OUTPUT_TOO_MANY, the hold released, and nothing was downloaded
    assert_failed_and_released(env, g, "OUTPUT_TOO_MANY")
    assert env.media.spooled == 0
    assert str(MAX_OUTPUTS + 1) in (env.get(g).error_message or "")


async def test_the_most_outputs_a_generation_may_have_are_all_stored(env: Env) -> None:
    g = finished(env, *[PNG] * MAX_OUTPUTS)
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    assert env.get(g).status is S.SUCCEEDED and len(outputs_of(env, g)) == MAX_OUTPUTS


async def test_an_output_that_cannot_be_checked_now_is_retried_at_the_next_poll(env: Env) -> None:
    # given a second output whose check cannot finish now (its decoder was killed)
    g = finished(env, PNG, PNG + b" UNCHECKABLE")
    # when it is finalized
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    # then it is still PROCESSING, holding its credits, its lease released until the next poll
    after = env.get(g)
    assert (after.status, after.error_code, after.lease_token) == (S.PROCESSING, None, None)
    assert after.next_attempt_at == env.clock.now() + env.policy.poll_interval
    assert env.kinds(g) == [LedgerKind.RESERVE] and env.store.assets == []
    assert env.media.open == 0
    # and when the check works on the next attempt, the generation succeeds with both outputs
    env.provider.bodies[env.provider.status_of.output_urls[1]] = JPEG
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    assert env.get(g).status is S.SUCCEEDED
    assert outputs_of(env, g) == [f"outputs/{g.user_id}/{g.id}/0.png", f"outputs/{g.user_id}/{g.id}/1.jpg"]


async def test_one_refused_output_fails_the_whole_generation_and_deletes_the_good_copies(env: Env) -> None:
    # given two good outputs and a third that is an HTML page
    g = finished(env, PNG, JPEG, HTML)
    # when it is finalized
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    # then the generation failed as a whole, and the two copies made before the refusal are gone
    assert_failed_and_released(env, g, "OUTPUT_UNSUPPORTED_TYPE")
    assert sorted(env.storage.deleted) == [
        f"outputs/{g.user_id}/{g.id}/0.png",
        f"outputs/{g.user_id}/{g.id}/1.jpg",
    ]
    assert "refused" in (env.get(g).error_message or "")


async def test_a_refusal_after_a_cancel_still_deletes_the_copies(env: Env) -> None:
    # given a generation canceled while its second output (an HTML page) was being checked
    g = finished(env, PNG, HTML)
    env.media.gate, env.media.free = asyncio.Event(), 1
    finalizing = asyncio.create_task(finalization.refresh(g.id, ports=env.ports, policy=env.policy))
    await asyncio.wait_for(env.media.probing.wait(), 5)
    env.store.generations[g.id] = dataclasses.replace(env.get(g), status=S.CANCELED, lease_token=None)
    env.media.gate.set()
    await asyncio.wait_for(finalizing, 5)
    # then the cancel stands, and no copy is left
    assert env.get(g).status is S.CANCELED and outputs_of(env, g) == []


async def test_a_finalizer_that_loses_its_lease_mid_verify_stops_and_leaves_the_copies_to_the_new_holder(
    env: Env,
) -> None:
    # given a finished generation whose second output probes slowly
    g = finished(env, PNG, JPEG)
    policy = dataclasses.replace(env.policy, lease_renew_seconds=0.05)
    env.media.gate, env.media.free = asyncio.Event(), 1
    finalizing = asyncio.create_task(finalization.refresh(g.id, ports=env.ports, policy=policy))
    await asyncio.wait_for(env.media.probing.wait(), 5)
    # when another worker takes the generation over meanwhile
    env.store.generations[g.id] = dataclasses.replace(env.get(g), lease_token=uuid.uuid4())
    await asyncio.wait_for(finalizing, 5)
    # then this finalizer settled nothing, released nothing, and left the first copy (the new holder's key too)
    after = env.get(g)
    assert (after.status, after.charged_credits, after.thumbnails_pending) == (S.PROCESSING, 0, 0)
    assert env.store.assets == [] and env.kinds(g) == [LedgerKind.RESERVE]
    assert outputs_of(env, g) == [f"outputs/{g.user_id}/{g.id}/0.png"]
    assert env.media.open == 0  # the cancelled spool's file was deleted


async def test_success_is_announced_then_thumbnails_are_queued_and_a_lost_enqueue_changes_nothing(env: Env) -> None:
    # given a queue that refuses messages
    g = finished(env, PNG, JPEG)
    env.jobs.failure = ConnectionError("redis is down")
    # when it is finalized
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    # then it SUCCEEDED all the same, with both thumbnails pending (the sweep queues them later)
    after = env.get(g)
    assert (after.status, after.charged_credits, after.thumbnails_pending) == (S.SUCCEEDED, COST, 2)
    events = [e for e in env.publisher.events if isinstance(e, GenerationChanged)]
    assert [(e.status, e.thumbnails_pending) for e in events] == [(S.SUCCEEDED, 2)]
    # and with the queue back, the next success queues its thumbnails
    env.jobs.failure = None
    g2 = finished(env, PNG)
    await finalization.refresh(g2.id, ports=env.ports, policy=env.policy)
    assert env.jobs.kicked == [(THUMBNAIL_TASK, {"generation_id": str(g2.id)})]


_SIGNATURES = st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\0\0\0\0WEBP", b"<svg"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(heads=st.lists(_SIGNATURES, min_size=1, max_size=3), tails=st.lists(st.binary(max_size=40), min_size=3))
async def test_any_output_bytes_end_stored_under_an_allowed_type_or_failed_with_nothing_stored(
    heads: list[bytes], tails: list[bytes]
) -> None:
    # given outputs of arbitrary bytes behind plausible or hostile signatures
    env = Env()
    bodies = [head + tail for head, tail in zip(heads, tails, strict=False)]
    g = finished(env, *bodies)
    policy = dataclasses.replace(env.policy, media_limits=MediaLimits(max_bytes=48))
    # when it is finalized
    await finalization.refresh(g.id, ports=env.ports, policy=policy)
    after = env.get(g)
    # then either every output is stored under an allowed, sniffed type and its extension...
    if after.status is S.SUCCEEDED:
        assert len(env.store.assets) == len(bodies) == after.thumbnails_pending
        for asset in env.store.assets:
            assert asset.content_type in ALLOWED_TYPES
            assert asset.object_key.endswith(extension_for(asset.content_type))
            assert env.storage.content_types[asset.object_key] == asset.content_type
    # ...or the generation failed with a refusal's code, its hold released, nothing left stored
    else:
        assert after.status is S.FAILED and after.error_code in REJECTION_CODES
        assert outputs_of(env, g) == [] and env.store.assets == []
        assert env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    assert env.media.open == 0
