"""Hostile images against the workshop: endless animations, slow decodes, thumbnails of large pictures.

Each animation is checked to hold the frames it was made with (Pillow merges repeated frames
when saving, so consecutive frames differ).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from domain.media import MediaLimits, MediaRejected, MediaUnavailable
from infrastructure.media import LocalMediaWorkshop
from infrastructure.media.images import MAX_FRAMES, MIN_FRAME_PIXELS, PRESHRINK_FACTOR, preshrink_factor, preshrunk
from tests.integration.media_samples import chunked, encoded

ROOT = Path(__file__).resolve().parents[2]
FORMATS = {"GIF": "image/gif", "PNG": "image/png", "WEBP": "image/webp"}


@pytest.fixture
def spool_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "spool"
    yield directory
    assert list(directory.iterdir()) == [], "the workshop left files behind"


def flicker(fmt: str, frames: int, size: tuple[int, int], mode: str = "L") -> bytes:
    """An animation of `frames` frames alternating black and white."""
    images = [Image.new(mode, size, 255 if i % 2 else 0) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format=fmt, save_all=True, append_images=images[1:], duration=20, loop=0)
    data = out.getvalue()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == fmt and getattr(image, "n_frames", 1) == frames
    return data


async def rejection(workshop: LocalMediaWorkshop, data: bytes, limits: MediaLimits) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        async with workshop.spool(chunked(data), limits=limits):
            pass
    return caught.value


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_animation_of_more_frames_than_the_cap_is_refused(spool_dir: Path, fmt: str) -> None:
    # given an animation of one frame more than the cap, each frame a single pixel
    data = flicker(fmt, MAX_FRAMES + 1, (1, 1))
    workshop = LocalMediaWorkshop(temp_dir=spool_dir)
    # then it is refused for its frames, however few pixels they hold
    assert (await rejection(workshop, data, MediaLimits())).code == "OUTPUT_TOO_MANY_FRAMES"
    # while one of as many frames as the cap passes
    async with workshop.spool(chunked(flicker(fmt, MAX_FRAMES, (1, 1))), limits=MediaLimits()) as media:
        assert (media.info.width, media.info.height) == (1, 1)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(side=st.integers(min_value=1, max_value=64), fmt=st.sampled_from(sorted(FORMATS)))
async def test_tiny_frames_are_charged_a_fixed_least_cost(spool_dir: Path, side: int, fmt: str) -> None:
    # given a pixel budget of 64 least-cost frames and an animation of 65 tiny frames
    limits = MediaLimits(max_pixels=16 * MIN_FRAME_PIXELS)
    data = flicker(fmt, 65, (side, side))
    # then its frames are over the budget, though their own pixels are far below it
    assert 65 * side * side < 4 * limits.max_pixels
    refused = await rejection(LocalMediaWorkshop(temp_dir=spool_dir), data, limits)
    assert refused.code == "OUTPUT_TOO_MANY_PIXELS"


async def test_decoding_an_animation_stops_at_the_probe_timeout(spool_dir: Path) -> None:
    # given an animation well within the frame and pixel caps, and a probe time limit already spent
    data = flicker("PNG", 200, (64, 64))
    limits = MediaLimits(probe_timeout_seconds=1e-9)
    # when it is spooled
    started = time.monotonic()
    with pytest.raises(MediaUnavailable) as unavailable:
        async with LocalMediaWorkshop(temp_dir=spool_dir).spool(chunked(data), limits=limits):
            pass
    # then it is left unjudged (retried later), after its first frame
    assert "did not finish within" in str(unavailable.value) and "(1 frames)" in str(unavailable.value)
    assert time.monotonic() - started < 10


def _decoding_threads() -> int:
    """Threads now inside the decoding of an animation's frames."""
    return sum(
        any(frame.f_code.co_name == "_decode_all_frames" for frame, _ in traceback.walk_stack(top))
        for top in sys._current_frames().values()
    )


async def test_a_cancelled_image_probe_keeps_its_slot_until_its_thread_ends(spool_dir: Path) -> None:
    # given a workshop of one slot, probing an animation that takes a while to decode
    workshop = LocalMediaWorkshop(temp_dir=spool_dir, concurrency=1)
    slow = flicker("PNG", 60, (2000, 2000))
    limits = MediaLimits(max_pixels=64 * 1024 * 1024)

    async def probe() -> None:
        async with workshop.spool(chunked(slow), limits=limits):
            pass

    task = asyncio.create_task(probe())
    while _decoding_threads() == 0:
        assert not task.done()
        await asyncio.sleep(0.005)
    # when its caller is cancelled mid-decode
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # then the slot stays taken for as long as the thread decodes, and is given back after
    held_while_decoding = []
    while _decoding_threads():
        held_while_decoding.append(workshop._slots.locked())
        await asyncio.sleep(0.005)
    assert held_while_decoding and all(held_while_decoding)
    for _ in range(200):
        if not workshop._slots.locked():
            break
        await asyncio.sleep(0.005)
    assert not workshop._slots.locked()
    # and the next file is probed in it
    async with workshop.spool(chunked(encoded(Image.new("RGB", (8, 8)), "PNG")), limits=limits) as media:
        assert media.info.width == 8


MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from PIL import Image
    from infrastructure.media.images import image_thumbnail

    path = Path(sys.argv[1])
    with Image.open(path) as image:
        image.load()  # the one full-size decode the thumbnail cannot avoid
        bands = len(image.getbands())
        decoded = image.width * image.height * (4 if bands >= 3 else bands)  # RGB is held in 4 bytes too
    del image
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    thumb = image_thumbnail(path, sys.argv[2], max_side=512, quality=80)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"decoded": decoded, "extra": after - before, "size": [thumb.width, thumb.height]}))
    """
)


@pytest.mark.parametrize(("mode", "fmt"), [("RGBA", "PNG"), ("P", "PNG"), ("RGB", "WEBP")])
def test_a_large_pictures_thumbnail_needs_little_beyond_its_decode(tmp_path: Path, mode: str, fmt: str) -> None:
    # given a 4096 x 3072 picture whose EXIF turns it a quarter (orientation 6)
    image = Image.new("RGB", (4096, 3072), (30, 90, 160))
    ImageDraw.Draw(image).ellipse((200, 200, 3800, 2800), fill=(240, 200, 40))
    image = image.convert("RGBA") if mode == "RGBA" else image.quantize(16) if mode == "P" else image
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / f"large.{fmt.lower()}"
    path.write_bytes(encoded(image, fmt, exif=exif.tobytes(), **({"lossless": False} if fmt == "WEBP" else {})))
    # when its thumbnail is made in a fresh process
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), f"image/{fmt.lower()}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    measured = json.loads(done.stdout)
    # then it is upright, and its peak memory grew by a few strips, not by copies of the picture
    # (the RGBA one alone is 48 MiB; turning, flattening and resizing it whole took several)
    assert measured["size"] == [384, 512]
    assert measured["decoded"] >= 4096 * 3072
    assert measured["extra"] < 32 * 1024 * 1024, measured


@settings(max_examples=25, deadline=None)
@given(
    width=st.integers(min_value=1, max_value=3000),
    height=st.integers(min_value=1, max_value=3000),
    mode=st.sampled_from(["RGBA", "RGB", "L", "LA", "P", "1", "I;16"]),
    max_side=st.integers(min_value=16, max_value=512),
)
def test_preshrinking_keeps_the_picture_and_stops_at_twice_the_thumbnail(
    width: int, height: int, mode: str, max_side: int
) -> None:
    # given a picture of any size and mode, with EXIF
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image = image.convert("L").convert("I;16") if mode == "I;16" else image.convert(mode)
    image.info["exif"] = b"Exif\x00\x00test"
    # when it is preshrunk
    shrunk = preshrunk(image, max_side=max_side)
    # then its long side is not below twice the thumbnail's, its proportions hold, its info stays
    long_side = max(width, height)
    assert max(shrunk.size) >= min(long_side, PRESHRINK_FACTOR * max_side)
    assert max(shrunk.size) < 2 * PRESHRINK_FACTOR * max_side or shrunk is image
    factor = preshrink_factor(width, height, max_side)
    assert shrunk.size == (-(-width // factor), -(-height // factor))
    assert shrunk.info.get("exif") == b"Exif\x00\x00test"
