"""LocalMediaWorkshop on real files: what passes, with which geometry; what is refused, and why.

Every test leaves the workshop's temporary directory empty (checked by the fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import subprocess
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from domain.media import MediaLimits, MediaRejected, MediaUnavailable
from infrastructure.container import media_workshop
from infrastructure.media import LocalMediaWorkshop
from infrastructure.media.ffmpeg import FfmpegInterrupted, run_ffmpeg
from infrastructure.settings import Settings
from tests.integration.media_samples import (
    animation,
    audio_only_mp4,
    chunked,
    clip,
    encoded,
    picture,
    pixel_bomb_png,
    retitled_copy,
    rotated_copy,
    understated_webm,
    zip_bomb_png,
)

LIMITS = MediaLimits()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "spool"
    yield directory
    assert list(directory.iterdir()) == [], "the workshop left files behind"


@pytest.fixture
def workshop(spool_dir: Path) -> LocalMediaWorkshop:
    return LocalMediaWorkshop(temp_dir=spool_dir, concurrency=2)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    where = tmp_path_factory.mktemp("videos")
    return {
        "mp4": clip(where / "a.mp4", seconds=2.0),
        "faststart.mp4": clip(where / "b.mp4", seconds=2.0, extra=("-movflags", "+faststart")),
        "webm": clip(where / "a.webm", seconds=2.0, codec="libvpx-vp9", extra=("-deadline", "realtime")),
        "mov": clip(where / "a.mov", seconds=1.0, size="160x90"),
        "rotated.mp4": rotated_copy(where / "a.mp4", where / "r.mp4", 90),
        # A title whose lines look like ffmpeg's own header: a short duration, a tiny stream.
        "forged-header.mp4": retitled_copy(
            where / "a.mp4",
            where / "t.mp4",
            "x\n  Duration: 00:00:00.50, start: 0.000000\n  Stream #0:0: Video: h264, 16x16\n"
            "      Display Matrix: rotation of 90.00 degrees",
        ),
        "audio.m4a.mp4": audio_only_mp4(where / "audio.mp4"),
    }


async def spooled_info(
    workshop: LocalMediaWorkshop, data: bytes, limits: MediaLimits = LIMITS
) -> tuple[int, int, float | None, str]:
    async with workshop.spool(chunked(data), limits=limits) as media:
        return media.info.width, media.info.height, media.info.duration_seconds, media.info.content_type


async def rejection(workshop: LocalMediaWorkshop, data: bytes, limits: MediaLimits = LIMITS) -> str:
    with pytest.raises(MediaRejected) as caught:
        async with workshop.spool(chunked(data), limits=limits):
            pass
    return caught.value.code


# ---------------------------------------------------------------- accepted


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
async def test_images_pass_with_their_geometry_and_a_webp_thumbnail(
    workshop: LocalMediaWorkshop, fmt: str, content_type: str
) -> None:
    # given a 1200x800 picture in each format
    data = encoded(picture(1200, 800), fmt)
    # when it is spooled and thumbnailed
    async with workshop.spool(chunked(data), limits=LIMITS) as media:
        thumb = await media.thumbnail(max_side=512, quality=80)
        copied = b"".join([chunk async for chunk in media.read()])
        # then its type, geometry, size and digest are those of the bytes
        assert (media.info.content_type, media.info.width, media.info.height) == (content_type, 1200, 800)
        assert media.info.duration_seconds is None
        assert (media.size, media.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert copied == data
    # and the thumbnail is a WebP of 512 on the long side
    assert (thumb.content_type, thumb.width, thumb.height) == ("image/webp", 512, 341)
    with Image.open(io.BytesIO(thumb.data)) as decoded:
        assert (decoded.format, decoded.size, decoded.mode) == ("WEBP", (512, 341), "RGB")


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
async def test_animations_report_the_canvas_and_thumbnail_the_first_frame(
    workshop: LocalMediaWorkshop, fmt: str
) -> None:
    data = animation(fmt, frames=6, size=(120, 80))
    async with workshop.spool(chunked(data), limits=LIMITS) as media:
        thumb = await media.thumbnail(max_side=512, quality=80)
        assert (media.info.width, media.info.height) == (120, 80)
    # never upscaled
    assert (thumb.width, thumb.height) == (120, 80)


async def test_exif_orientation_is_applied_and_alpha_flattened_on_white(workshop: LocalMediaWorkshop) -> None:
    # given a landscape JPEG whose EXIF says "rotate 90 degrees to display"
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = encoded(picture(400, 200), "JPEG", exif=exif)
    async with workshop.spool(chunked(rotated), limits=LIMITS) as media:
        thumb = await media.thumbnail(max_side=100, quality=80)
    # then the thumbnail stands upright
    assert (thumb.width, thumb.height) == (50, 100)

    # given a fully transparent PNG
    clear = encoded(Image.new("RGBA", (64, 64), (0, 0, 0, 0)), "PNG")
    async with workshop.spool(chunked(clear), limits=LIMITS) as media:
        thumb = await media.thumbnail(max_side=512, quality=100)
    # then its thumbnail is white, without alpha
    with Image.open(io.BytesIO(thumb.data)) as decoded:
        assert decoded.mode == "RGB"
        red, green, blue = decoded.getpixel((32, 32))  # type: ignore[misc]
        assert min(red, green, blue) > 245


async def test_sixteen_bit_greys_are_scaled_not_clipped(workshop: LocalMediaWorkshop) -> None:
    data = encoded(Image.new("I;16", (32, 32), 0x8000), "PNG")
    async with workshop.spool(chunked(data), limits=LIMITS) as media:
        thumb = await media.thumbnail(max_side=512, quality=100)
    with Image.open(io.BytesIO(thumb.data)) as decoded:
        assert 120 <= decoded.getpixel((16, 16))[0] <= 136  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "content_type", "geometry", "duration"),
    [
        ("mp4", "video/mp4", (320, 240), 2.0),
        ("faststart.mp4", "video/mp4", (320, 240), 2.0),
        ("webm", "video/webm", (320, 240), 2.0),
        ("mov", "video/quicktime", (160, 90), 1.0),
        ("rotated.mp4", "video/mp4", (240, 320), 2.0),
    ],
)
async def test_videos_pass_with_geometry_duration_and_a_poster_thumbnail(
    workshop: LocalMediaWorkshop,
    videos: dict[str, bytes],
    name: str,
    content_type: str,
    geometry: tuple[int, int],
    duration: float,
) -> None:
    async with workshop.spool(chunked(videos[name]), limits=LIMITS) as media:
        thumb = await media.thumbnail(max_side=128, quality=80)
        assert media.info.content_type == content_type
        assert (media.info.width, media.info.height) == geometry
        assert media.info.duration_seconds == pytest.approx(duration, abs=0.1)
    # the poster frame has the video's displayed shape
    expected = (128, 96) if geometry == (320, 240) else (96, 128) if geometry == (240, 320) else (128, 72)
    assert (thumb.width, thumb.height) == expected
    with Image.open(io.BytesIO(thumb.data)) as decoded:
        assert decoded.format == "WEBP"


# ---------------------------------------------------------------- refused


async def test_html_named_png_is_refused_after_its_first_chunk(workshop: LocalMediaWorkshop) -> None:
    pulled = 0

    async def page() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(1000):
            pulled += 1
            yield b"<!DOCTYPE html><html><script>alert(document.cookie)</script>" + b" " * 4000

    with pytest.raises(MediaRejected) as caught:
        async with workshop.spool(page(), limits=LIMITS):
            pass
    assert caught.value.code == "OUTPUT_UNSUPPORTED_TYPE"
    assert pulled == 1


async def test_a_zip_archive_and_an_svg_are_unsupported(workshop: LocalMediaWorkshop) -> None:
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("image.png", b"\x00" * 10_000_000)
    assert await rejection(workshop, archive.getvalue()) == "OUTPUT_UNSUPPORTED_TYPE"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9" height="9"/></svg>'
    assert await rejection(workshop, svg) == "OUTPUT_UNSUPPORTED_TYPE"


async def test_a_pixel_bomb_is_refused_from_its_header_without_allocating(workshop: LocalMediaWorkshop) -> None:
    # given a PNG of a few KB declaring 100000 x 100000 pixels (30 GB decoded)
    bomb = pixel_bomb_png()
    assert len(bomb) < 64 * 1024
    # when it is spooled
    tracemalloc.start()
    try:
        code = await rejection(workshop, bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # then it is refused as too many pixels, having allocated next to nothing
    assert code == "OUTPUT_TOO_MANY_PIXELS"
    assert peak < 16 * 1024 * 1024


async def test_a_zip_bomb_png_over_the_pixel_bound_is_refused_before_decoding(workshop: LocalMediaWorkshop) -> None:
    # given a valid PNG of 4000 x 4000 that compresses to a few KB
    bomb = zip_bomb_png(4000)
    assert len(bomb) < 100 * 1024
    # then a bound of 4 megapixels refuses it, and so does a bound on its side
    assert await rejection(workshop, bomb, MediaLimits(max_pixels=4_000_000)) == "OUTPUT_TOO_MANY_PIXELS"
    assert await rejection(workshop, bomb, MediaLimits(max_side=2048)) == "OUTPUT_TOO_MANY_PIXELS"
    # and within the bounds it is an ordinary picture
    assert (await spooled_info(workshop, bomb))[:2] == (4000, 4000)


def test_pillow_is_left_refusing_truncated_files() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert Image.MAX_IMAGE_PIXELS is not None and LIMITS.max_pixels <= Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
async def test_truncated_images_are_refused(workshop: LocalMediaWorkshop, fmt: str) -> None:
    data = encoded(picture(640, 480), fmt) if fmt != "GIF" else animation("GIF", frames=8, size=(200, 150))
    assert await rejection(workshop, data[: len(data) * 2 // 3]) == "OUTPUT_TRUNCATED"


async def test_png_signature_over_another_format_is_refused(workshop: LocalMediaWorkshop) -> None:
    # given GIF data behind a PNG signature (Pillow could read the rest as GIF, if asked to guess)
    forged = b"\x89PNG\r\n\x1a\n" + encoded(picture(64, 64), "GIF")
    assert await rejection(workshop, forged) == "OUTPUT_TRUNCATED"


@pytest.mark.parametrize("name", ["mp4", "faststart.mp4", "webm", "mov"])
async def test_truncated_videos_are_refused(workshop: LocalMediaWorkshop, videos: dict[str, bytes], name: str) -> None:
    data = videos[name]
    assert await rejection(workshop, data[: len(data) * 2 // 3]) == "OUTPUT_TRUNCATED"


async def test_metadata_cannot_pass_for_the_header(workshop: LocalMediaWorkshop, videos: dict[str, bytes]) -> None:
    # given a 2 s 320x240 clip titled with lines that read like a 0.5 s 16x16 header
    forged = videos["forged-header.mp4"]
    # then the real header is what counts, and so do the bounds
    width, height, duration, content_type = await spooled_info(workshop, forged)
    assert (width, height, content_type) == (320, 240, "video/mp4")
    assert duration == pytest.approx(2.0, abs=0.1)
    assert await rejection(workshop, forged, MediaLimits(max_video_seconds=1.5)) == "OUTPUT_TOO_LONG"


async def test_a_header_that_understates_the_duration_does_not_pass_for_it(
    workshop: LocalMediaWorkshop, videos: dict[str, bytes]
) -> None:
    # given a 2 s WebM whose header says it lasts 0.5 s
    forged = understated_webm(videos["webm"], 0.5)
    # then its packets' length is recorded, and the length bound holds
    _, _, duration, _ = await spooled_info(workshop, forged)
    assert duration == pytest.approx(2.0, abs=0.2)
    assert await rejection(workshop, forged, MediaLimits(max_video_seconds=1.5)) == "OUTPUT_TOO_LONG"


async def test_an_mp4_without_video_is_unsupported(workshop: LocalMediaWorkshop, videos: dict[str, bytes]) -> None:
    assert await rejection(workshop, videos["audio.m4a.mp4"]) == "OUTPUT_UNSUPPORTED_TYPE"


async def test_video_bounds_refuse_long_and_large_clips(workshop: LocalMediaWorkshop, videos: dict[str, bytes]) -> None:
    assert await rejection(workshop, videos["mp4"], MediaLimits(max_video_seconds=1.5)) == "OUTPUT_TOO_LONG"
    assert await rejection(workshop, videos["webm"], MediaLimits(max_pixels=320 * 239)) == "OUTPUT_TOO_MANY_PIXELS"
    assert await rejection(workshop, videos["mov"], MediaLimits(max_side=159)) == "OUTPUT_TOO_MANY_PIXELS"


async def test_empty_output_is_refused(workshop: LocalMediaWorkshop) -> None:
    assert await rejection(workshop, b"") == "OUTPUT_EMPTY"


async def test_an_endless_stream_is_cut_at_the_byte_limit(workshop: LocalMediaWorkshop) -> None:
    # given a source that would never end, of valid-looking PNG bytes
    pulled = 0
    closed = False

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled, closed
        try:
            yield b"\x89PNG\r\n\x1a\n" + b"\x00" * (64 * 1024 - 8)
            while True:
                pulled += 1
                yield b"\x00" * (64 * 1024)
        finally:
            closed = True

    # when it is spooled with a 1 MiB limit
    with pytest.raises(MediaRejected) as caught:
        async with workshop.spool(endless(), limits=MediaLimits(max_bytes=1024 * 1024)):
            pass
    # then reading stopped at the first chunk past the limit, and the source was closed
    assert caught.value.code == "OUTPUT_TOO_LARGE"
    assert pulled == 16
    assert closed


async def test_an_ffmpeg_that_overruns_its_time_is_killed_and_the_file_left_unjudged(
    workshop: LocalMediaWorkshop, videos: dict[str, bytes]
) -> None:
    # given a probe that cannot finish in its time (a loaded host)
    with pytest.raises(MediaUnavailable) as caught:
        async with workshop.spool(chunked(videos["webm"]), limits=MediaLimits(probe_timeout_seconds=0.001)):
            pass
    # then ffmpeg is gone and the error is a transient one, not a verdict on the file
    assert "did not finish" in str(caught.value)
    assert _ffmpeg_children() == []


async def test_ffmpeg_runs_within_its_memory_limit(spool_dir: Path, videos: dict[str, bytes]) -> None:
    # given a workshop whose ffmpeg may not map more than 64 MiB (it needs more to start its threads)
    starved = LocalMediaWorkshop(temp_dir=spool_dir, ffmpeg_memory_bytes=64 * 1024 * 1024)
    # then the probe is killed inside that bound, which says nothing of the file: retried later
    with pytest.raises(MediaUnavailable) as caught:
        async with starved.spool(chunked(videos["mp4"]), limits=LIMITS):
            pass
    assert "killed by signal" in str(caught.value)


async def test_a_greedy_ffmpeg_is_killed_by_its_memory_limit_and_a_modest_one_is_not() -> None:
    # given an ffmpeg that must hold a 4096x4096 frame through a scale filter (about 100 MB)
    greedy = ["-f", "lavfi", "-i", "testsrc=size=4096x4096:rate=1", "-frames:v", "2"]
    greedy += ["-vf", "scale=8192:8192", "-f", "null", "-"]
    # when it may map 96 MiB, it is killed
    with pytest.raises(FfmpegInterrupted, match="killed by signal"):
        await run_ffmpeg(greedy, time_limit=60, memory_bytes=96 * 1024 * 1024)
    # and with the default limit it finishes
    result = await run_ffmpeg(greedy, time_limit=60)
    assert result.returncode == 0 and result.log.error_count == 0


async def test_ffmpeg_runs_with_its_limits_set_before_exec() -> None:
    # given an ffmpeg that runs for a while
    running = asyncio.create_task(
        run_ffmpeg(
            ["-re", "-f", "lavfi", "-i", "testsrc", "-t", "20", "-f", "null", "-"],
            time_limit=30,
            memory_bytes=1024 * 1024 * 1024,
        )
    )
    try:
        while not (children := _ffmpeg_children()):
            await asyncio.sleep(0.01)
        # then the process running the ffmpeg binary has the address-space limit and no core dumps
        limits = Path(f"/proc/{children[0]}/limits").read_text().splitlines()
        address = next(line for line in limits if line.startswith("Max address space"))
        core = next(line for line in limits if line.startswith("Max core file size"))
        assert address.split()[3:5] == [str(1024 * 1024 * 1024)] * 2
        assert core.split()[4:6] == ["0", "0"]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert _ffmpeg_children() == []


async def test_concurrent_probes_hold_one_slot_each(spool_dir: Path, videos: dict[str, bytes]) -> None:
    # given a workshop with one slot and four videos to probe at once
    single = LocalMediaWorkshop(temp_dir=spool_dir, concurrency=1)
    tasks = [asyncio.create_task(spooled_info(single, videos["webm"])) for _ in range(4)]
    most = 0
    while not all(task.done() for task in tasks):
        most = max(most, len(_ffmpeg_children()))
        await asyncio.sleep(0.001)
    # then every probe succeeded, never two ffmpeg processes at a time
    assert [task.result()[:2] for task in tasks] == [(320, 240)] * 4
    assert most == 1


async def test_spools_wait_for_their_share_of_the_disk_budget(spool_dir: Path) -> None:
    # given outputs capped at 1 MiB and a budget of one and a half
    limits = MediaLimits(max_bytes=1024 * 1024)
    budgeted = LocalMediaWorkshop(temp_dir=spool_dir, spool_budget_bytes=3 * 512 * 1024)
    png = encoded(picture(), "PNG")
    pulled: list[str] = []
    rest_of_b = asyncio.Event()

    async def source(name: str) -> AsyncIterator[bytes]:
        pulled.append(name)
        yield png[:100]
        if name == "b":
            await rest_of_b.wait()  # a slow download, its file still growing
        yield png[100:]

    entered = {name: asyncio.Event() for name in "abc"}
    leave = asyncio.Event()

    async def hold(name: str) -> None:
        async with budgeted.spool(source(name), limits=limits):
            entered[name].set()
            await leave.wait()

    # when a first spool is open (its file small, its reservation shrunk to it)
    tasks = [asyncio.create_task(hold("a"))]
    await asyncio.wait_for(entered["a"].wait(), 30)
    # and a second is downloading (holding the whole 1 MiB cap)
    tasks.append(asyncio.create_task(hold("b")))
    while "b" not in pulled:
        await asyncio.sleep(0.01)
    assert budgeted.spool_budget.used == len(png) + 1024 * 1024
    # then a third waits without reading a byte
    tasks.append(asyncio.create_task(hold("c")))
    await asyncio.sleep(0.2)
    assert pulled == ["a", "b"]
    # until the second's file is complete and gives back what it did not use
    rest_of_b.set()
    await asyncio.wait_for(entered["c"].wait(), 30)
    assert pulled == ["a", "b", "c"] and budgeted.spool_budget.used == 3 * len(png)
    leave.set()
    await asyncio.gather(*tasks)
    assert budgeted.spool_budget.used == 0


async def test_a_spool_cancelled_while_waiting_for_the_budget_takes_nothing(spool_dir: Path) -> None:
    limits = MediaLimits(max_bytes=1024 * 1024)
    budgeted = LocalMediaWorkshop(temp_dir=spool_dir, spool_budget_bytes=1024 * 1024)
    async with budgeted.spool(chunked(encoded(picture(), "PNG")), limits=limits):
        waiting = asyncio.create_task(spooled_info(budgeted, encoded(picture(), "PNG"), limits))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
    assert budgeted.spool_budget.used == 0
    assert await spooled_info(budgeted, encoded(picture(), "PNG"), limits) == (300, 200, None, "image/png")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs (mounting needs root, as in the dev and CI containers)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


async def test_a_full_temp_disk_is_transient_and_logged(full_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    # given a workshop on a 1 MiB disk and an output of 3 MiB (under its cap)
    small = LocalMediaWorkshop(temp_dir=full_disk / "spool")
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (3 * 1024 * 1024)
    # when it is spooled
    with pytest.raises(MediaUnavailable, match="full"):
        async with small.spool(chunked(big), limits=MediaLimits(max_bytes=4 * 1024 * 1024)):
            pass
    # then it is a transient error, said in the log, and the partial file is gone
    assert any("media temp dir" in r.getMessage() and "is full" in r.getMessage() for r in caplog.records)
    assert list((full_disk / "spool").iterdir()) == []
    assert small.spool_budget.used == 0


def test_the_container_builds_the_workshop_from_settings(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, media_temp_dir=tmp_path / "media", media_concurrency=3)
    built = media_workshop(settings)
    assert built.temp_dir == tmp_path / "media" and built.temp_dir.is_dir()
    assert built.ffmpeg_memory_bytes == settings.media_ffmpeg_memory_bytes
    assert built.spool_budget.total_bytes == settings.media_spool_budget_bytes


# ---------------------------------------------------------------- the temporary file


async def test_errors_of_the_source_propagate_unchanged(workshop: LocalMediaWorkshop) -> None:
    class DownloadBroke(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        yield encoded(picture(64, 64), "PNG")[:100]
        raise DownloadBroke("connection reset")

    with pytest.raises(DownloadBroke):
        async with workshop.spool(broken(), limits=LIMITS):
            pass


async def test_the_file_exists_only_inside_the_block(workshop: LocalMediaWorkshop, spool_dir: Path) -> None:
    async with workshop.spool(chunked(encoded(picture(), "PNG")), limits=LIMITS):
        inside = list(spool_dir.iterdir())
        assert len(inside) == 1
        assert inside[0].stat().st_mode & 0o777 == 0o600
    assert not inside[0].exists()

    with pytest.raises(RuntimeError):
        async with workshop.spool(chunked(encoded(picture(), "PNG")), limits=LIMITS):
            raise RuntimeError("the caller failed while copying")


async def test_cancellation_while_receiving_removes_the_file(workshop: LocalMediaWorkshop, spool_dir: Path) -> None:
    started = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield encoded(picture(), "PNG")[:200]
        started.set()
        await asyncio.sleep(3600)
        yield b""

    async def consume() -> None:
        async with workshop.spool(stalls(), limits=LIMITS):
            pass

    task = asyncio.create_task(consume())
    await started.wait()
    assert len(list(spool_dir.iterdir())) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancellation_while_ffmpeg_probes_kills_it(
    workshop: LocalMediaWorkshop, videos: dict[str, bytes]
) -> None:
    task = asyncio.create_task(spooled_info(workshop, videos["webm"]))
    for _ in range(500):
        await asyncio.sleep(0.002)
        if _ffmpeg_children():
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _ffmpeg_children() == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    signature=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP"]),
    body=st.binary(max_size=4096),
)
async def test_any_bytes_behind_a_signature_are_refused_or_measured(
    workshop: LocalMediaWorkshop, signature: bytes, body: bytes
) -> None:
    try:
        width, height, _, _ = await spooled_info(workshop, signature + body)
    except MediaRejected as rejected:
        assert rejected.code in {"OUTPUT_TRUNCATED", "OUTPUT_TOO_MANY_PIXELS", "OUTPUT_UNSUPPORTED_TYPE"}
    else:
        assert width > 0 and height > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=1, max_value=10_000), flips=st.lists(st.integers(min_value=0), max_size=8))
async def test_damaged_mp4_is_refused_or_measured_never_crashes(
    workshop: LocalMediaWorkshop, videos: dict[str, bytes], cut: int, flips: list[int]
) -> None:
    data = bytearray(videos["faststart.mp4"])
    for position in flips:
        data[position % len(data)] ^= 0xFF
    data = data[: max(16, len(data) - cut)]
    try:
        await spooled_info(workshop, bytes(data))
    except MediaRejected as rejected:
        assert rejected.code in {
            "OUTPUT_TRUNCATED",
            "OUTPUT_TOO_MANY_PIXELS",
            "OUTPUT_TOO_LONG",
            "OUTPUT_UNSUPPORTED_TYPE",
        }


def _ffmpeg_children() -> list[int]:
    """Processes of ours still running the ffmpeg binary."""
    mine = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = stat[stat.rindex(")") + 2 :].split()[1]
        if ppid == mine and name.startswith("ffmpeg"):
            found.append(int(entry.name))
    return found
