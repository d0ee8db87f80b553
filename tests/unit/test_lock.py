"""requirements.lock pins every dependency of pyproject.toml, and this environment was installed from it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"


def locked() -> dict[str, tuple[str, Marker | None]]:
    """name -> (pinned version, the marker under which the pin applies)."""
    pins: dict[str, tuple[str, Marker | None]] = {}
    for line in LOCK.read_text().splitlines():
        if not line or line.startswith((" ", "#", "-")):
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        pins[canonicalize_name(requirement.name)] = (specifier.version, requirement.marker)
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in [*project["dependencies"], *extras] if not r.startswith("genhub")]


def test_the_lock_was_made_from_this_pyproject() -> None:
    # given the digest `make lock` recorded, when it is checked, then pyproject's dependency tables match it
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lock_digest.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = locked()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is declared in pyproject.toml but not pinned in requirements.lock"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), f"{name}=={version} breaks {requirement}"


def test_this_environment_has_the_locked_versions() -> None:
    # given an environment made by `make test` (pip install -c requirements.lock),
    # then every pin that applies to this platform is the installed version
    wrong = []
    for name, (version, marker) in locked().items():
        if marker is not None and not marker.evaluate():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # pulled in only by an extra that this environment does not use
        if installed != version:
            wrong.append(f"{name}: {installed} installed, {version} locked")
    assert not wrong, wrong
