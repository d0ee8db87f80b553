"""The layers keep their dependency direction (DESIGN.md): domain imports nothing of ours."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("domain", "infrastructure", "graph", "workers", "entrypoints")
# The entry points start processes: they may import every layer, and nothing imports them.
ALLOWED: dict[str, set[str]] = {
    "domain": {"domain"},
    "infrastructure": {"infrastructure", "domain"},
    "graph": {"graph", "domain", "infrastructure"},
    "workers": {"workers", "domain", "infrastructure"},
    "entrypoints": set(OURS),
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(OURS)


def modules() -> list[tuple[str, Path]]:
    return [(pkg, path) for pkg in OURS for path in sorted((ROOT / pkg).rglob("*.py"))]


@pytest.mark.parametrize(("package", "path"), modules(), ids=lambda v: str(v).replace(str(ROOT) + "/", ""))
def test_module_imports_only_what_its_layer_may(package: str, path: Path) -> None:
    # given the module's imports
    relative = path.relative_to(ROOT).as_posix()
    allowed = ALLOWED[package]
    # then none of them points against the dependency direction
    assert imported_packages(path) <= allowed, f"{relative} imports {imported_packages(path) - allowed}"


def test_domain_uses_only_the_standard_library() -> None:
    import sys

    third_party: dict[str, set[str]] = {}
    for path in (ROOT / "domain").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("domain", "__future__"):
                    third_party.setdefault(path.name, set()).add(top)
    assert third_party == {}
