"""The sample catalogues (deploy/catalogue/) and the example of docs/catalogue.md pass the upsertModel rules, and ship in the image."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from domain.catalogue_document import read_catalogue
from infrastructure.catalogue_files import parse_document
from infrastructure.providers.fal import FalProvider
from infrastructure.providers.kie import KieProvider
from infrastructure.providers.replicate import ReplicateProvider
from infrastructure.providers.simulated import SimulatedProvider
from tests.deploy.test_dockerfile import DOCKERFILE, _dockerignore_patterns, dockerignored

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "deploy" / "catalogue").glob("*.yaml"))
PROVIDERS = frozenset({SimulatedProvider.name, KieProvider.name, ReplicateProvider.name, FalProvider.name})


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_each_sample_is_a_valid_catalogue(path: Path) -> None:
    # given a shipped sample, when it is read as `genhub catalogue apply` reads it
    entries = read_catalogue(parse_document(path.read_bytes(), json_format=False).document, known_providers=PROVIDERS)
    # then it names models of one provider, each with at least one preset
    assert entries.models
    assert len({m.provider for m in entries.models}) == 1
    assert all(m.presets for m in entries.models)


def test_there_is_a_sample_per_provider() -> None:
    assert {p.stem for p in SAMPLES} >= {"simulated", "kie", "replicate", "fal"}


def test_the_documented_example_is_a_valid_catalogue() -> None:
    text = (REPO / "docs" / "catalogue.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"^```yaml\n(.*?)^```", text, re.S | re.M)
    entries = read_catalogue(parse_document(example.encode(), json_format=False).document, known_providers=PROVIDERS)
    assert [(m.slug, [p.name for p in m.presets]) for m in entries.models] == [("flux-dev", ["Widescreen draft"])]


def test_the_image_ships_the_samples_where_the_guide_says() -> None:
    assert "COPY deploy/catalogue /app/deploy/catalogue" in DOCKERFILE.read_text(encoding="utf-8")
    patterns = _dockerignore_patterns()
    for sample in SAMPLES:
        assert not dockerignored(sample.relative_to(REPO).as_posix(), patterns), sample
    assert dockerignored("deploy/fly.toml", patterns)
    guide = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    for sample in SAMPLES:
        assert f"/app/deploy/catalogue/{sample.name}" in guide
