"""The simulated provider: timed lifecycle, failure modes, prompt markers, no in-process state.

Its outputs (requested sizes, seeds, real videos, hostile outputs) are tested in
tests/integration/providers/test_simulated_outputs.py.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

import pytest
from PIL import Image

from domain.ports import ProviderError, ProviderJob, ProviderStatus
from infrastructure.providers.simulated import SimulatedProvider
from tests.fixtures.clock import FakeClock


def job(prompt: str = "a lighthouse at dusk", **params: Any) -> ProviderJob:
    return ProviderJob(generation_id=uuid.uuid4(), provider_model="sim-v1", prompt=prompt, params=params)


async def download_all(provider: SimulatedProvider, url: str) -> bytes:
    return b"".join([chunk async for chunk in provider.download(url)])


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
        image.load()
        return image.size


async def test_lifecycle_progresses_then_succeeds_with_a_png(clock: FakeClock) -> None:
    provider = SimulatedProvider(steps=4, step_seconds=1.0, clock=clock)
    external_id = await provider.submit(job())

    seen: list[ProviderStatus] = []
    for _ in range(5):
        seen.append(await provider.status(external_id))
        clock.advance(1.0)

    assert [s.state for s in seen] == ["pending", "running", "running", "running", "succeeded"]
    assert [s.progress for s in seen] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert seen[-1].output_urls == (f"sim://{external_id}/0.png",)
    png = await download_all(provider, seen[-1].output_urls[0])
    assert png_size(png) == (512, 512)  # the catalogue's default size when the job names none


async def test_real_time_progress_never_goes_backwards() -> None:
    provider = SimulatedProvider(steps=3, step_seconds=0.05)
    external_id = await provider.submit(job())
    progress: list[float] = []
    for _ in range(100):
        status = await provider.status(external_id)
        assert status.progress is not None
        progress.append(status.progress)
        if status.state == "succeeded":
            break
        await asyncio.sleep(0.01)  # real time on purpose: the wall clock is what this test is about

    assert status.state == "succeeded"
    assert progress == sorted(progress)
    assert progress[-1] == 1.0


async def test_status_is_computed_by_another_instance(clock: FakeClock) -> None:
    api_side = SimulatedProvider(steps=2, step_seconds=1.0, clock=clock)
    external_id = await api_side.submit(job("[fail] cross process"))
    # The worker builds its own provider (other settings even): the id carries everything.
    worker_side = SimulatedProvider(steps=10, step_seconds=60.0, mode="hang", clock=clock)

    assert (await worker_side.status(external_id)).state == "pending"
    clock.advance(1.0)
    failed = await worker_side.status(external_id)
    assert failed.state == "failed"
    assert failed.error_code == "SIMULATED_FAILURE"


async def test_succeeded_output_downloads_from_another_instance(clock: FakeClock) -> None:
    external_id = await SimulatedProvider(steps=1, step_seconds=0, clock=clock).submit(job("same prompt"))
    other = SimulatedProvider(clock=clock)
    status = await other.status(external_id)

    assert status.state == "succeeded"
    assert png_size(await download_all(other, status.output_urls[0])) == (512, 512)


@pytest.mark.parametrize("source", ["settings", "prompt"])
async def test_fail_mode_ends_failed_with_a_message(clock: FakeClock, source: str) -> None:
    provider = SimulatedProvider(
        steps=4, step_seconds=1.0, mode="fail" if source == "settings" else "normal", clock=clock
    )
    external_id = await provider.submit(job("[FAIL] please" if source == "prompt" else "plain"))

    clock.advance(1.0)
    assert (await provider.status(external_id)).state == "running"
    clock.advance(100.0)
    status = await provider.status(external_id)
    assert status.state == "failed"
    assert status.error_code == "SIMULATED_FAILURE"
    assert status.error_message
    assert status.output_urls == ()


@pytest.mark.parametrize("source", ["settings", "prompt"])
async def test_hang_mode_stays_running_forever(clock: FakeClock, source: str) -> None:
    provider = SimulatedProvider(
        steps=4, step_seconds=1.0, mode="hang" if source == "settings" else "normal", clock=clock
    )
    external_id = await provider.submit(job("[hang]" if source == "prompt" else "plain"))

    clock.advance(10 * 24 * 3600)
    status = await provider.status(external_id)
    assert status.state == "running"
    assert status.progress is not None and status.progress < 1.0


async def test_reject_marker_raises_a_permanent_content_policy_error() -> None:
    with pytest.raises(ProviderError) as caught:
        await SimulatedProvider().submit(job("something [reject]"))

    assert caught.value.code == "CONTENT_POLICY"
    assert caught.value.retryable is False


async def test_transient_marker_fails_the_first_attempt_only() -> None:
    provider = SimulatedProvider()
    with pytest.raises(ProviderError) as caught:
        await provider.submit(job("[transient] flaky"))
    assert caught.value.retryable is True

    assert (await provider.submit(job("[transient] flaky", _attempt=1))).startswith("sim-")


async def test_transient_with_a_count_fails_that_many_attempts() -> None:
    provider = SimulatedProvider()
    for attempt in (0, 1, 2):
        with pytest.raises(ProviderError):
            await provider.submit(job("[transient:3]", _attempt=attempt))

    assert await provider.submit(job("[transient:3]", _attempt=3))


async def test_same_prompt_same_picture(clock: FakeClock) -> None:
    provider = SimulatedProvider(steps=1, step_seconds=0, clock=clock)
    first = await provider.submit(job("twin"))
    second = await provider.submit(job("twin"))
    third = await provider.submit(job("other"))

    assert first != second
    assert await download_all(provider, f"sim://{first}/0.png") == await download_all(provider, f"sim://{second}/0.png")
    assert await download_all(provider, f"sim://{first}/0.png") != await download_all(provider, f"sim://{third}/0.png")


async def test_download_before_success_or_of_unknown_urls_is_a_permanent_error(clock: FakeClock) -> None:
    provider = SimulatedProvider(steps=4, step_seconds=1.0, clock=clock)
    external_id = await provider.submit(job())

    for url in (f"sim://{external_id}/0.png", "sim://nope/0.png", "https://example.com/x.png"):
        with pytest.raises(ProviderError) as caught:
            await download_all(provider, url)
        assert caught.value.retryable is False


async def test_unknown_external_id_is_a_permanent_error() -> None:
    with pytest.raises(ProviderError) as caught:
        await SimulatedProvider().status("sim-not-a-real-id")

    assert caught.value.code == "TASK_NOT_FOUND"
    assert caught.value.retryable is False


async def test_cancel_succeeds_and_callbacks_are_refused() -> None:
    provider = SimulatedProvider()
    external_id = await provider.submit(job())

    assert provider.supports_cancel is True
    await provider.cancel(external_id)
    with pytest.raises(PermissionError):
        provider.parse_callback({}, b"{}")


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        SimulatedProvider(mode="explode")  # type: ignore[arg-type]
