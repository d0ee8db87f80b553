"""`domain.media.sniff`: only real signatures pass, whatever a file is called or claims to be."""

from __future__ import annotations

import io
import zipfile

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from domain.media import ALLOWED_TYPES, SNIFF_BYTES, sniff

# The first 64 bytes of files made by the bundled ffmpeg (testsrc, libx264 / libvpx-vp9).
MP4_HEAD = (
    b"\x00\x00\x00 ftypisom\x00\x00\x02\x00isomiso2avc1mp41\x00\x00\x00\x08free\x00\x00(\x92mdat"
    b"\x00\x00\x02\xa0\x06\x05\xff\xff\x9c\xdcE\xe9\xbd\xe6\xd9H"
)
MOV_HEAD = (
    b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  \x00\x00\x00\x08wide\x00\x00\x07umdat"
    b"\x00\x00\x02\xa0\x06\x05\xff\xff\x9c\xdcE\xe9\xbd\xe6\xd9H\xb7\x96,\xd8 \xd9#\xee\xefx26"
)
WEBM_HEAD = (
    b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\xf2\x81\x04B\xf3\x81\x08B\x82\x84webmB\x87\x81"
    b"\x02B\x85\x81\x02\x18S\x80g\x01\x00\x00\x00\x00\x00.#\x11M\x9bt\xbaM\xbb\x8bS\xab\x84\x15I\xa9fS"
)
MKV_HEAD = (
    b"\x1aE\xdf\xa3\xa3B\x86\x81\x01B\xf7\x81\x01B\xf2\x81\x04B\xf3\x81\x08B\x82\x88matroskaB\x87"
    b"\x81\x04B\x85\x81\x02\x18S\x80g\x01\x00\x00\x00\x00\x00\t\xf6\x11M\x9bt\xc0\xbf\x84\xab+\xe5<M"
)

SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"RIFF",
    b"\x1a\x45\xdf\xa3",
)


def pillow_file(fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(out, format=fmt, **options)
    return out.getvalue()


def test_every_allowed_type_has_a_real_sample_that_sniffs_right() -> None:
    # given real files of every allowed type
    samples = {
        "image/png": pillow_file("PNG"),
        "image/jpeg": pillow_file("JPEG"),
        "image/webp": pillow_file("WEBP"),
        "image/gif": pillow_file("GIF"),
        "video/mp4": MP4_HEAD,
        "video/quicktime": MOV_HEAD,
        "video/webm": WEBM_HEAD,
    }
    # then each sniffs as its type, from its first SNIFF_BYTES bytes only
    assert set(samples) == ALLOWED_TYPES
    for content_type, data in samples.items():
        assert sniff(data[:SNIFF_BYTES]) == content_type, content_type


def test_matroska_that_is_not_webm_is_not_stored() -> None:
    assert sniff(MKV_HEAD) is None


def test_markup_scripts_and_archives_never_pass_whatever_their_name() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("picture.png", pillow_file("PNG"))
    hostile = [
        b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        b"<html><script>fetch('/graphql')</script></html>",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        b"#!/bin/sh\nrm -rf /\n",
        b"alert(document.cookie)//" + b"\x89PNG\r\n\x1a\n",
        b"%PDF-1.7\n",
        archive.getvalue(),
        b"\x1f\x8b\x08\x00" + b"\x00" * 60,  # gzip
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1",  # AVIF: an image format we do not store
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00heicmif1",
        b"",
    ]
    for data in hostile:
        assert sniff(data[:SNIFF_BYTES]) is None, data[:20]


@given(st.binary(max_size=SNIFF_BYTES))
def test_random_bytes_pass_only_with_a_signature(head: bytes) -> None:
    # when random bytes sniff as an allowed type
    content_type = sniff(head)
    # then they start with that type's signature (or carry an ISO `ftyp` box)
    if content_type is not None:
        assert content_type in ALLOWED_TYPES
        assert head.startswith(SIGNATURES) or head[4:8] == b"ftyp"


@given(st.sampled_from(SIGNATURES[:4]), st.binary(max_size=SNIFF_BYTES))
def test_a_signature_followed_by_anything_sniffs_as_its_type(signature: bytes, rest: bytes) -> None:
    assert sniff(signature + rest) in {"image/png", "image/jpeg", "image/gif"}


@given(st.binary(min_size=1, max_size=SNIFF_BYTES).filter(lambda b: not b.startswith(SIGNATURES)))
def test_bytes_without_a_signature_or_ftyp_never_pass(head: bytes) -> None:
    if head[4:8] != b"ftyp":
        assert sniff(head) is None
