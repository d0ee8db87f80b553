"""A decoded picture made into the product's thumbnail: upright, RGB, at most max_side, WebP.

Transparency is flattened onto white: thumbnails are shown on the history grid's light
cards, and an RGB WebP is smaller than one with an alpha plane. Pictures smaller than
`max_side` keep their size (never upscaled).
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from domain.media import THUMBNAIL_TYPE, Thumbnail

BACKGROUND = (255, 255, 255)


def fitted_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """`width` x `height` scaled to fit `max_side` on the long side (never up), at least 1x1."""
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height
    return max(1, round(width * max_side / long_side)), max(1, round(height * max_side / long_side))


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with any transparency composited onto white; 16-bit and float greys scaled to 8 bits."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit PNGs decode to "I": map their full range onto 0..255 instead of clipping it.
        image = image.convert("I").point(lambda v: v / 256).convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image if image.mode == "RGB" else image.convert("RGB")
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, BACKGROUND)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def webp_thumbnail(image: Image.Image, *, max_side: int, quality: int) -> Thumbnail:
    """The thumbnail of a loaded picture (its EXIF orientation applied)."""
    upright = ImageOps.exif_transpose(image) or image
    rgb = to_rgb(upright)
    size = fitted_size(rgb.width, rgb.height, max_side)
    if size != rgb.size:
        # reducing_gap: a cheap box reduction first, Lanczos for the last factor of 3.
        rgb = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    rgb.save(out, format="WEBP", quality=quality, method=4)
    return Thumbnail(data=out.getvalue(), content_type=THUMBNAIL_TYPE, width=rgb.width, height=rgb.height)
