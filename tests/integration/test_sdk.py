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

from scripts.sdk_codegen import HAND_WRITTEN, PYTHON_PACKAGE, missing_hand_written, outputs, stale_files, write
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


def test_the_hand_written_client_module_is_committed_once_inside_the_package() -> None:
    # given the repository: the module lives in the package, and nowhere else under sdk/
    assert missing_hand_written(ROOT) == []
    copies = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "sdk").rglob("trusted_documents.py"))
    assert copies == [f"{PYTHON_PACKAGE}/trusted_documents.py"]


def test_a_missing_hand_written_module_is_named(tmp_path: Path) -> None:
    # given a tree whose package lacks the hand-written module
    (tmp_path / PYTHON_PACKAGE).mkdir(parents=True)
    # then it is named (`make sdk` and `--check` stop on it before generating anything)
    assert missing_hand_written(tmp_path) == list(HAND_WRITTEN)


def test_regenerating_replaces_generated_modules_and_keeps_the_hand_written_one(tmp_path: Path) -> None:
    # given a committed package: a hand-written module, a generated one, and one of an operation since removed
    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    hand_written = committed / HAND_WRITTEN[0]
    hand_written.parent.mkdir(parents=True)
    hand_written.write_text("# by hand\n")
    (committed / PYTHON_PACKAGE / "client.py").write_text("old\n")
    (committed / PYTHON_PACKAGE / "removed_operation.py").write_text("old\n")
    (fresh / PYTHON_PACKAGE).mkdir(parents=True)
    (fresh / PYTHON_PACKAGE / "client.py").write_text("new\n")
    # when the fresh generation is written over it
    write(fresh, committed)
    # then the generated modules are the fresh ones, the hand-written one is untouched and never compared
    assert hand_written.read_text() == "# by hand\n"
    assert sorted(path.name for path in (committed / PYTHON_PACKAGE).iterdir()) == ["client.py", "trusted_documents.py"]
    assert (committed / PYTHON_PACKAGE / "client.py").read_text() == "new\n"
    assert stale_files(outputs(committed), outputs(fresh)) == []
