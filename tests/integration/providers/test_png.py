"""The stdlib PNG encoder produces valid, deterministic files."""

from __future__ import annotations

import pytest

from infrastructure.providers.png import PNG_SIGNATURE, encode_png, render_png
from tests.integration.providers.pngcheck import assert_valid_png


def test_render_png_is_a_valid_256_square_rgb_png() -> None:
    data = render_png("a red fox in the snow")

    assert data.startswith(PNG_SIGNATURE)
    assert assert_valid_png(data) == (256, 256)


def test_same_seed_same_picture_other_seed_other_picture() -> None:
    assert render_png("prompt one") == render_png("prompt one")
    assert render_png("prompt one") != render_png("prompt two")


def test_custom_size() -> None:
    assert assert_valid_png(render_png("x", width=7, height=3)) == (7, 3)


def test_encode_png_rejects_rows_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError):
        encode_png(2, 2, [b"\x00" * 6])
    with pytest.raises(ValueError):
        encode_png(2, 1, [b"\x00" * 5])
    with pytest.raises(ValueError):
        encode_png(0, 1, [b""])
