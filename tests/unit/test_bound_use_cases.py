"""Transports call use cases bound once by the composition root, never the use case functions themselves.

graph/, workers/ and entrypoints/ may take types and constants from domain.use_cases (a
request dataclass, a task name), but every call goes through `Services`
(infrastructure/bootstrap.py, domain/services/): a use case's ports and policy are spelled
out in one place, not at each call site.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRANSPORTS = ("graph", "workers", "entrypoints")


def use_case_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every name imported from domain.use_cases[.x]."""
    found: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("domain.use_cases"):
            found.extend((node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((a.name, "*") for a in node.names if a.name.startswith("domain.use_cases"))
    return found


def transport_modules() -> list[Path]:
    return [path for package in TRANSPORTS for path in sorted((ROOT / package).rglob("*.py"))]


@pytest.mark.parametrize("path", transport_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_transports_import_no_use_case_function(path: Path) -> None:
    # given what the module imports from the use cases
    for module_name, name in use_case_imports(path):
        module = importlib.import_module(module_name)
        value = getattr(module, name, None) if name != "*" else module
        # then it is a type or a constant: no module to call functions on, no function
        assert not inspect.ismodule(value), f"{path.name} imports the module {module_name}.{name}"
        assert not inspect.isfunction(value), f"{path.name} calls {module_name}.{name} instead of a bound service"


def test_every_bound_service_is_on_services() -> None:
    from infrastructure.bootstrap import Services

    # given every class in domain/services
    services_dir = ROOT / "domain" / "services"
    bound: set[type] = set()
    for path in services_dir.glob("*.py"):
        if path.stem == "__init__":
            continue
        module = importlib.import_module(f"domain.services.{path.stem}")
        bound.update(v for v in vars(module).values() if inspect.isclass(v) and v.__module__ == module.__name__)
    # then each one is a field of Services, so the bootstrap binds it once
    hints = inspect.get_annotations(Services, eval_str=True)
    assert bound <= set(hints.values()), bound - set(hints.values())
