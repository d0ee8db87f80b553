"""What the simulated provider delivers: the requested size, a picture per prompt and seed,
real MP4 clips for video models, hostile outputs on request, and old task ids still served."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from domain.media import MediaLimits, MediaRejected, sniff
from domain.ports import ProviderError, ProviderJob
from infrastructure.media import LocalMediaWorkshop
from infrastructure.providers.png import render_png
from infrastructure.providers.simulated import SimulatedProvider
from tests.fixtures.clock import FakeClock


def job(prompt: str = "a lighthouse at dusk", *, kind: str = "image", **params: Any) -> ProviderJob:
    return ProviderJob(
        generation_id=uuid.uuid4(), provider_model=f"sim-{kind}", prompt=prompt, params=params, kind=kind
    )


@pytest.fixture
def provider(clock: FakeClock) -> SimulatedProvider:
    return SimulatedProvider(steps=1, step_seconds=0, clock=clock)


@pytest.fixture
def workshop(tmp_path: Path) -> LocalMediaWorkshop:
    return LocalMediaWorkshop(temp_dir=tmp_path / "spool")


async def output_of(provider: SimulatedProvider, submitted: ProviderJob) -> tuple[str, bytes]:
    external_id = await provider.submit(submitted)
    assert len(external_id) <= 128  # provider_tasks.external_id
    status = await provider.status(external_id)
    assert status.state == "succeeded"
    (url,) = status.output_urls
    return url, b"".join([chunk async for chunk in provider.download(url)])


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data), formats=["PNG"])
    image.load()
    return image


@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({"width": 1024, "height": 576}, (1024, 576)),
        ({"width": 64, "height": 2048}, (64, 2048)),
        ({"width": 10, "height": 5000}, (64, 2048)),  # clamped to 64..2048
        ({}, (512, 512)),
    ],
)
async def test_images_have_the_requested_size(
    provider: SimulatedProvider, params: dict[str, Any], size: tuple[int, int]
) -> None:
    url, data = await output_of(provider, job(**params))
    assert url.endswith("/0.png")
    assert picture(data).size == size


async def test_prompt_seed_and_style_choose_the_picture(provider: SimulatedProvider) -> None:
    async def pixels(prompt: str, **params: Any) -> bytes:
        return (await output_of(provider, job(prompt, width=96, height=64, **params)))[1]

    base = await pixels("a red fox", seed=1)
    # same prompt and seed: the same bytes, from another submit
    assert await pixels("a red fox", seed=1) == base
    # another seed, another prompt, another style: another picture
    others = [
        await pixels("a red fox", seed=2),
        await pixels("a grey fox", seed=1),
        await pixels("a red fox", seed=1, style="sketch"),
        await pixels("a red fox"),
    ]
    assert all(picture(other).tobytes() != picture(base).tobytes() for other in others)
    assert len({*others, base}) == 5


async def test_video_models_get_a_real_mp4_of_the_requested_duration(
    provider: SimulatedProvider, workshop: LocalMediaWorkshop
) -> None:
    # given a video job of 3 seconds at 321 x 180 (an odd width: H.264 wants it even)
    url, data = await output_of(provider, job("waves", kind="video", durationSeconds=3, width=321, height=180))
    # then it is an MP4 the workshop measures as asked
    assert url.endswith("/0.mp4")
    assert sniff(data[:64]) == "video/mp4"

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    async with workshop.spool(chunks(), limits=MediaLimits()) as media:
        thumb = await media.thumbnail(max_side=160, quality=80)
        assert (media.info.width, media.info.height) == (320, 180)
        assert media.info.duration_seconds == pytest.approx(3.0, abs=0.1)
    assert (thumb.width, thumb.height) == (160, 90)


async def test_video_defaults_and_bounds(provider: SimulatedProvider, workshop: LocalMediaWorkshop) -> None:
    _, data = await output_of(provider, job("clouds", kind="video", width=4000, height=10, durationSeconds=1))

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    async with workshop.spool(chunks(), limits=MediaLimits()) as media:
        assert (media.info.width, media.info.height) == (640, 64)


async def test_hostile_markers_deliver_what_the_pipeline_must_refuse(
    provider: SimulatedProvider, workshop: LocalMediaWorkshop
) -> None:
    async def refused(data: bytes) -> str:
        async def chunks() -> AsyncIterator[bytes]:
            if data:
                yield data

        with pytest.raises(MediaRejected) as caught:
            async with workshop.spool(chunks(), limits=MediaLimits()):
                pass
        return caught.value.code

    html_url, html = await output_of(provider, job("[html] a cat"))
    assert html_url.endswith("/0.png") and html.startswith(b"<!DOCTYPE html>")
    assert await refused(html) == "OUTPUT_UNSUPPORTED_TYPE"

    bomb_url, bomb = await output_of(provider, job("[BOMB] a cat", kind="video"))
    assert bomb_url.endswith("/0.png") and len(bomb) < 64 * 1024
    assert await refused(bomb) == "OUTPUT_TOO_MANY_PIXELS"

    for kind, suffix in (("image", "/0.png"), ("video", "/0.mp4")):
        cut_url, cut = await output_of(provider, job("[truncated] a cat", kind=kind, width=128, height=96))
        assert cut_url.endswith(suffix) and cut
        assert await refused(cut) == "OUTPUT_TRUNCATED"
        empty_url, empty = await output_of(provider, job("[empty] a cat", kind=kind))
        assert empty_url.endswith(suffix) and empty == b""
        assert await refused(empty) == "OUTPUT_EMPTY"


async def test_the_other_markers_still_work_with_sized_outputs(provider: SimulatedProvider, clock: FakeClock) -> None:
    slow = SimulatedProvider(steps=2, step_seconds=1.0, clock=clock)
    failing = await slow.submit(job("[fail] a cat", kind="video", durationSeconds=2))
    clock.advance(5)
    assert (await slow.status(failing)).state == "failed"
    hanging = await slow.submit(job("[hang] a cat", width=128, height=128))
    clock.advance(3600)
    assert (await slow.status(hanging)).state == "running"


async def test_task_ids_from_before_sized_outputs_still_deliver_their_png(clock: FakeClock) -> None:
    # given an id in the format of the previous release (no output part), finished
    seed = "0123456789ab"
    external_id = f"sim-{uuid.uuid4().hex}-{int(clock() * 1000) - 10_000}-4-500-normal-{seed}"
    provider = SimulatedProvider(clock=clock)
    status = await provider.status(external_id)
    # then it succeeds with the same 256 x 256 PNG as before
    assert status.state == "succeeded"
    assert status.output_urls == (f"sim://{external_id}/0.png",)
    data = b"".join([chunk async for chunk in provider.download(status.output_urls[0])])
    assert data == render_png(seed)


async def test_an_output_under_another_name_is_not_found(provider: SimulatedProvider) -> None:
    url, _ = await output_of(provider, job("waves", kind="video", durationSeconds=1, width=64, height=64))
    with pytest.raises(ProviderError) as caught:
        await anext(aiter(provider.download(url.replace("/0.mp4", "/0.png"))))
    assert caught.value.code == "OUTPUT_NOT_FOUND"
