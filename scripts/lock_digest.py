"""Ties requirements.lock to the dependency tables of pyproject.toml.

`make lock` writes the digest of pyproject's dependencies, optional dependencies and
requires-python as the lock's first line; `--check` (run by tests/unit/test_lock.py)
fails when pyproject.toml changed its dependencies since, so a lock that no longer
matches cannot land.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "# pyproject-digest: "


def pyproject_digest(pyproject: Path = ROOT / "pyproject.toml") -> str:
    project = tomllib.loads(pyproject.read_text())["project"]
    tables = {
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "requires-python": project.get("requires-python"),
    }
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()


def recorded_digest(lock: Path = ROOT / "requirements.lock") -> str | None:
    first = lock.read_text().splitlines()[0] if lock.exists() else ""
    return first.removeprefix(PREFIX) if first.startswith(PREFIX) else None


def write(lock: Path = ROOT / "requirements.lock") -> None:
    lines = [line for line in lock.read_text().splitlines() if not line.startswith(PREFIX)]
    lock.write_text("\n".join([PREFIX + pyproject_digest(), *lines]) + "\n")


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        write()
        return 0
    if argv == ["--check"]:
        if recorded_digest() == pyproject_digest():
            return 0
        sys.stderr.write("requirements.lock does not match pyproject.toml: run `make lock`\n")
        return 1
    sys.stderr.write("usage: lock_digest.py --write | --check\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
