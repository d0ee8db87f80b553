"""The committed SDKs of sdk/ are what the generators make of schema.graphql and sdk/operations today.

The check regenerates them into a temporary directory (scripts/sdk_codegen.py --check: graphql-codegen
and `tsc` on node/'s packages, ariadne-codegen from its own .venv-codegen) and compares, as
test_schema_contract.py does for schema.graphql itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scripts.sdk_codegen import stale_files
from tests.fixtures.node_tools import NodeTools

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "sdk_codegen.py"


# A fresh clone installs node/'s packages and the generator's venv first: minutes on a busy machine.
@pytest.mark.timeout(480)
def test_the_committed_sdk_is_generated_from_the_committed_schema(node_tools: NodeTools) -> None:
    # given node/'s packages installed (shared with the other node tests) and the committed sdk/
    # when the generators run again and `tsc` checks the TypeScript
    check = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True, text=True, timeout=450, check=False
    )
    # then nothing differs
    assert check.returncode == 0, f"{check.stdout}\n{check.stderr}"
    assert "up to date" in check.stdout


def test_a_changed_missing_or_extra_file_is_named_as_stale() -> None:
    committed = {"sdk/a.ts": b"1", "sdk/b.ts": b"2", "sdk/old.py": b"3"}
    fresh = {"sdk/a.ts": b"1", "sdk/b.ts": b"changed", "sdk/new.py": b"4"}
    assert stale_files(committed, fresh) == ["sdk/b.ts", "sdk/new.py", "sdk/old.py"]
    assert stale_files(fresh, dict(fresh)) == []
