"""Images checked with Pillow: declared geometry first, then a full decode; and their thumbnails.

Blocking (decoding is CPU work): the workshop calls these in a thread. The file is opened
only as the format its bytes were sniffed as (`formats=`), so PNG bytes are decoded by the
PNG decoder or refused, never guessed into something else.

Bounds, in order:
1. Pillow's own guard inside `Image.open`: `Image.MAX_IMAGE_PIXELS` is set to the default
   `MediaLimits.max_pixels` when this module is imported (Pillow warns above it and refuses
   above twice it), and raised when a caller's limits allow more (never disabled);
2. the declared width and height (read from the header, nothing decoded yet) against the
   caller's `max_pixels` and `max_side`: a decompression bomb is refused here at the latest;
3. an animation's frames are all decoded (a cut last frame is a truncated file): at most
   `MAX_FRAMES` of them, within `ANIMATION_PIXEL_FACTOR` times `max_pixels` of decoded pixels
   in total, each frame counted as at least `MIN_FRAME_PIXELS` (a 1x1 frame still costs a
   decoder call), and within `probe_timeout_seconds` of wall-clock time, checked between
   frames (overrunning it is `MediaUnavailable`, retried later, not a verdict on the file).
   Those bounds end the thread by themselves: a thread cannot be cancelled.
`ImageFile.LOAD_TRUNCATED_IMAGES` stays False: a file that ends early fails to decode.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PIL import Image, ImageFile, ImageSequence, UnidentifiedImageError

from domain.media import MediaInfo, MediaLimits, MediaRejected, MediaUnavailable, Thumbnail
from infrastructure.media.thumbnails import fitted_size, to_rgb, webp_thumbnail

#: The Pillow format each sniffed type must decode as.
PILLOW_FORMATS: dict[str, str] = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}
#: Decoded pixels of all an animation's frames together, in multiples of `max_pixels`.
ANIMATION_PIXEL_FACTOR = 4
#: Frames of an animation decoded at most (OUTPUT_TOO_MANY_FRAMES beyond).
MAX_FRAMES = 1000
#: The least a frame counts against the pixel budget, however small it is.
MIN_FRAME_PIXELS = 256 * 256
#: How far the thumbnail's picture is reduced before it is turned upright and flattened:
#: to at most this many times the thumbnail's side (Lanczos makes the last step).
PRESHRINK_FACTOR = 2

_guard_lock = threading.Lock()


def _raise_pillow_guard(max_pixels: int) -> None:
    # Pillow's bound only has to be at least the caller's: our own check of the declared size
    # follows at once. (Where warnings are errors, as in the tests, its warning is a refusal.)
    with _guard_lock:
        current = Image.MAX_IMAGE_PIXELS
        if current is not None and current < max_pixels:
            Image.MAX_IMAGE_PIXELS = max_pixels


Image.MAX_IMAGE_PIXELS = MediaLimits().max_pixels


def check_geometry(width: int, height: int, limits: MediaLimits) -> None:
    if width <= 0 or height <= 0:
        raise MediaRejected("OUTPUT_TRUNCATED", f"declares an empty picture ({width}x{height})")
    if max(width, height) > limits.max_side:
        raise MediaRejected("OUTPUT_TOO_MANY_PIXELS", f"{width}x{height} has a side over {limits.max_side} pixels")
    if width * height > limits.max_pixels:
        raise MediaRejected("OUTPUT_TOO_MANY_PIXELS", f"{width}x{height} is over {limits.max_pixels} pixels")


def probe_image(path: Path, content_type: str, limits: MediaLimits) -> MediaInfo:
    """Width and height of a fully decodable image of the sniffed type; raises MediaRejected."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set: cut files would pass as whole")
    fmt = PILLOW_FORMATS[content_type]
    deadline = time.monotonic() + limits.probe_timeout_seconds
    _raise_pillow_guard(limits.max_pixels)
    try:
        with _opened(path, fmt) as image:
            width, height = image.size
            check_geometry(width, height, limits)
            # verify() reads every chunk and checks its CRC (PNG) without decoding; the
            # image cannot be used after it, so decoding reopens the file.
            image.verify()
        with _opened(path, fmt) as image:
            _decode_all_frames(image, limits, deadline=deadline)
    except (MediaRejected, MediaUnavailable):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaRejected("OUTPUT_TOO_MANY_PIXELS", str(exc)) from None
    except MemoryError:
        raise MediaRejected("OUTPUT_TOO_MANY_PIXELS", "decoding it ran out of memory") from None
    except Exception as exc:  # every decoder error of a hostile file: OSError, SyntaxError, zlib...
        raise MediaRejected("OUTPUT_TRUNCATED", f"does not decode as {fmt}: {exc}") from None
    return MediaInfo(content_type=content_type, width=width, height=height)


def _opened(path: Path, fmt: str) -> Image.Image:
    try:
        image = Image.open(path, formats=[fmt])
    except UnidentifiedImageError:
        raise MediaRejected("OUTPUT_TRUNCATED", f"its bytes start like {fmt} but are not {fmt}") from None
    if image.format != fmt:
        image.close()
        raise MediaRejected("OUTPUT_UNSUPPORTED_TYPE", f"decodes as {image.format}, not {fmt}")
    return image


def _decode_all_frames(image: Image.Image, limits: MediaLimits, *, deadline: float) -> None:
    budget = ANIMATION_PIXEL_FACTOR * limits.max_pixels
    decoded = 0
    for count, frame in enumerate(ImageSequence.Iterator(image), start=1):
        if count > MAX_FRAMES:
            raise MediaRejected("OUTPUT_TOO_MANY_FRAMES", f"has more than {MAX_FRAMES} frames")
        decoded += max(frame.width * frame.height, MIN_FRAME_PIXELS)
        if decoded > budget:
            raise MediaRejected("OUTPUT_TOO_MANY_PIXELS", f"its frames hold more than {budget} pixels")
        if time.monotonic() > deadline:
            # Within the frame and pixel bounds, a slow decode says more of the host than of the
            # file: no verdict, retried as an ffmpeg that overruns its time is.
            raise MediaUnavailable(
                f"decoding an image did not finish within {limits.probe_timeout_seconds:g} s ({count} frames)"
            )
        frame.load()


def image_thumbnail(path: Path, content_type: str, *, max_side: int, quality: int) -> Thumbnail:
    """The thumbnail of a probed image (the first frame of an animation)."""
    fmt = PILLOW_FORMATS[content_type]
    try:
        with Image.open(path, formats=[fmt]) as image:
            if fmt == "JPEG":
                # Let the JPEG decoder scale down by 1/2..1/8 while decoding (DCT scaling).
                image.draft("RGB", fitted_size(image.width, image.height, max_side))
            image.load()
            return webp_thumbnail(preshrunk(image, max_side=max_side), max_side=max_side, quality=quality)
    except MediaRejected:
        raise
    except Exception as exc:
        raise MediaRejected("OUTPUT_TRUNCATED", f"does not decode as {fmt}: {exc}") from None


def preshrink_factor(width: int, height: int, max_side: int) -> int:
    """The whole factor that brings the long side down to no less than PRESHRINK_FACTOR x max_side."""
    return max(1, max(width, height) // (PRESHRINK_FACTOR * max_side))


def preshrunk(image: Image.Image, *, max_side: int) -> Image.Image:
    """A loaded picture reduced by box averaging, strip by strip, before anything copies it whole.

    Turning it upright, flattening its transparency and the Lanczos resize each make a new
    picture; done on the full-size one they multiplied the memory of one decode. A strip of
    about STRIP_PIXELS is copied, converted and averaged at a time, so beyond the decoded
    picture only a strip and the reduced result are held. Its `info` (EXIF) goes with it, so
    it is still turned upright afterwards.
    """
    factor = preshrink_factor(image.width, image.height, max_side)
    if factor == 1:
        return image
    width, height = image.size
    rows = factor * max(1, STRIP_PIXELS // (width * factor))
    shrunk: Image.Image | None = None
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(top + rows, height)))
        if strip.mode not in _REDUCIBLE_MODES:
            # Palette, bilevel and 16-bit pictures cannot be averaged as they are.
            strip = to_rgb(strip)
        part = strip.reduce(factor)
        if shrunk is None:
            shrunk = Image.new(part.mode, (-(-width // factor), -(-height // factor)))
        shrunk.paste(part, (0, top // factor))
    assert shrunk is not None  # height >= 1
    shrunk.info = dict(image.info)
    return shrunk


#: Modes `Image.reduce` averages (it refuses the others).
_REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "I", "F", "CMYK", "PA", "La", "RGBa"})
#: Pixels of the picture copied at a time while it is reduced.
STRIP_PIXELS = 1024 * 1024
