"""The ZIP writer of data exports on a real disk: hostile upload names stay inside the unpack directory.

Every member name of an archive comes from `domain.data_exports` (ids and sanitised text);
the writer checks each again and refuses the rest. The archive is opened with `zipfile`
and unpacked, as a user's unzip tool would.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.data_exports import (
    MAX_MEMBER_NAME,
    ArchiveTooLarge,
    is_safe_member,
    output_member,
    safe_member_part,
    upload_member,
)
from infrastructure.exports.zip_archive import ZipArchives

CHECKS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
#: Names an attacker would try: traversal, absolute paths, drive letters, separators, controls, Unicode look-alikes.
HOSTILE = [
    "../../etc/passwd",
    "/etc/shadow",
    "C:\\Windows\\system32\\x.dll",
    "..\\..\\boot.ini",
    "..",
    ".",
    "",
    "a/../../b",
    "\x00evil.png",
    "name\r\nX-Header: 1",
    "\u202egnp.exe",
    "\uff0e\uff0e\uff0fescape",
    "\u2215etc\u2215passwd",
    "x" * 400 + ".png",
]


async def pieces(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def archive_of(tmp_path: Path, files: dict[str, bytes], max_size: int = 10 * 1024 * 1024) -> bytes:
    async with ZipArchives(tmp_path).create(max_size=max_size) as writer:
        for name, data in files.items():
            await writer.add_file(name, pieces(data[:3], data[3:]))
        return b"".join([chunk async for chunk in writer.read()])


def unpacked_inside(data: bytes, target: Path) -> list[Path]:
    """Unpack as `zipfile.extractall` does and return where each member landed (all under `target`)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(target)
        landed = [(target / info.filename).resolve() for info in archive.infolist()]
    root = target.resolve()
    assert all(path.is_relative_to(root) and path != root for path in landed), landed
    return landed


@CHECKS
@given(filename=st.text(max_size=300))
@example(filename=HOSTILE[0])
async def test_any_upload_name_becomes_one_safe_member(tmp_path: Path, filename: str) -> None:
    # given an uploaded file with any name at all
    chunk_id = uuid.uuid4()
    member = upload_member(chunk_id, filename)
    # then its member is one file directly under uploads/, prefixed by the chunk's id, of bounded length
    assert is_safe_member(member), member
    directory, name = member.split("/")
    assert directory == "uploads" and name.startswith(f"{chunk_id}-")
    assert len(name) <= len(str(chunk_id)) + 1 + MAX_MEMBER_NAME
    assert safe_member_part(filename) == safe_member_part(safe_member_part(filename))  # stable


async def test_hostile_names_unpack_inside_the_target(tmp_path: Path) -> None:
    # given an archive holding uploads under every hostile name, and an output
    files = {upload_member(uuid.uuid4(), name): name.encode("utf-8", "replace") + b"!" for name in HOSTILE}
    generation = uuid.uuid4()
    files[output_member(generation, 0, f"outputs/{uuid.uuid4()}/{generation}/0.PNG")] = b"\x89PNG-bytes"
    data = await archive_of(tmp_path / "work", files)
    # when it is unpacked
    landed = unpacked_inside(data, tmp_path / "out")
    # then every member is a distinct file inside the target, with its bytes
    assert len(set(landed)) == len(files)
    for name, body in files.items():
        assert (tmp_path / "out" / name).read_bytes() == body
    assert (tmp_path / "out" / "outputs" / str(generation) / "0.png").exists()


@pytest.mark.parametrize("name", ["../x", "/abs", "a//b", "a/./b", "c:\\x", "uploads/\x00", "ümlaut", "a\\b"])
async def test_the_writer_refuses_unsafe_member_names(tmp_path: Path, name: str) -> None:
    # given an archive being written
    async with ZipArchives(tmp_path).create(max_size=1024 * 1024) as writer:
        # when a member name that could leave the unpack directory is used, it is refused
        with pytest.raises(ValueError, match="unsafe archive member name"):
            await writer.add_file(name, pieces(b"x"))
        with pytest.raises(ValueError, match="unsafe archive member name"):
            await writer.add_text(name, "x")


async def test_json_lists_are_spooled_while_files_are_added(tmp_path: Path) -> None:
    # given a JSON list kept open while files are added between its items
    async with ZipArchives(tmp_path).create(max_size=1024 * 1024) as writer:
        async with writer.json_list("items.json") as items:
            for n in range(3):
                await items.append({"n": n, "text": "ünïcode \u2028"})
                await writer.add_file(f"files/{n}.bin", pieces(bytes([n]) * 10))
        async with writer.json_list("empty.json"):
            pass
        data = b"".join([chunk async for chunk in writer.read()])
    # then the archive holds the list as valid JSON, and each file
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert json.loads(archive.read("items.json")) == [{"n": n, "text": "ünïcode \u2028"} for n in range(3)]
        assert json.loads(archive.read("empty.json")) == []
        assert [archive.read(f"files/{n}.bin") for n in range(3)] == [bytes([n]) * 10 for n in range(3)]
    # and the work directory is gone afterwards
    assert list(tmp_path.iterdir()) == []


async def test_an_archive_past_its_limit_is_refused(tmp_path: Path) -> None:
    # given a limit of 64 KiB and 200 KiB of incompressible bytes
    body = hashlib.sha256(b"seed").digest() * (200 * 1024 // 32)
    with pytest.raises(ArchiveTooLarge):
        await archive_of(tmp_path, {"files/big.bin": body}, max_size=64 * 1024)
    # then nothing is left on disk
    assert list(tmp_path.iterdir()) == []
