"""schema.graphql is exported from the code, and the code keeps every part of the public contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import build_schema, find_breaking_changes

from graph.schema import export_sdl

ROOT = Path(__file__).resolve().parents[2]
#: The public contract lives beside the repository (../shared); a copy is committed so that a
#: clone anywhere else checks against it too, and the copy must not drift from the original.
SHARED_CONTRACT = ROOT.parent / "shared" / "contract.graphql"
CONTRACT = ROOT / "tests" / "contract" / "contract.graphql"


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == export_sdl(), "schema.graphql is stale: run `genhub export-schema` and commit it"


def test_nothing_of_the_contract_is_dropped_or_renamed() -> None:
    # given the public contract and the schema built from the code
    contract = build_schema(CONTRACT.read_text(encoding="utf-8"))
    ours = build_schema(export_sdl())
    # then no change between them would break a client coded against the contract
    breaking = [f"{c.type.name}: {c.description}" for c in find_breaking_changes(contract, ours)]
    assert breaking == []


def test_the_committed_contract_is_the_shared_one() -> None:
    if not SHARED_CONTRACT.exists():
        pytest.skip("no ../shared/contract.graphql beside this clone: the committed copy is the contract here")
    assert CONTRACT.read_text(encoding="utf-8") == SHARED_CONTRACT.read_text(encoding="utf-8"), (
        "tests/contract/contract.graphql differs from ../shared/contract.graphql: copy the shared one"
    )
