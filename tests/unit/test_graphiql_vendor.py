"""The vendored GraphiQL assets are what scripts/vendor_graphiql.py wrote, each with its licence."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from graph.ide import ASSETS, STATIC_DIR, VENDOR_DIR, json_for_html
from scripts.vendor_graphiql import PACKAGES

MANIFEST = json.loads((VENDOR_DIR / "manifest.json").read_text())


def test_every_vendored_file_has_the_digest_the_vendoring_script_recorded() -> None:
    on_disk = {p.relative_to(VENDOR_DIR).as_posix() for p in VENDOR_DIR.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == set(MANIFEST["files"]), "run scripts/vendor_graphiql.py"
    for name, digest in MANIFEST["files"].items():
        assert hashlib.sha256((VENDOR_DIR / name).read_bytes()).hexdigest() == digest, name


def test_the_manifest_pins_the_packages_the_script_pins_each_with_a_licence() -> None:
    pinned = {p.name: {"version": p.version, "integrity": p.integrity} for p in PACKAGES}
    assert MANIFEST["packages"] == pinned
    for package in PACKAGES:
        licence = f"licenses/{package.name.replace('@', '').replace('/', '-')}-{package.version}.txt"
        assert licence in MANIFEST["files"], package.name
        assert "MIT License" in (VENDOR_DIR / licence).read_text()
        assert any(package.version in target for target in package.files.values()), "file names carry the version"


def test_the_page_names_each_vendored_script_and_stylesheet() -> None:
    page = (STATIC_DIR / "index.html").read_text()
    for package in PACKAGES:
        for target in package.files.values():
            assert f'"graphiql/vendor/{target}"' in page, target
            assert f"vendor/{target}" in ASSETS


@given(st.text())
def test_json_for_html_cannot_close_its_script_block_and_reads_back(text: str) -> None:
    encoded = json_for_html({"exampleQuery": text})
    assert not {"<", ">", "&"} & set(encoded)
    assert json.loads(encoded) == {"exampleQuery": text}
