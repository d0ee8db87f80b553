"""The documented error codes (graph/error_codes.py, the schema's `Error.code`, docs/clients.md)
are exactly the codes the code can produce: every DomainError's code, and the codes the graph
layer and the persisted-documents rules write into `extensions.code`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import graph.schema  # noqa: F401  (imports every module that defines a DomainError)
from domain.errors import DomainError
from graph.error_codes import ALL_CODES, REQUEST_CODES, RESULT_CODES
from graph.errors import to_graphql
from graph.schema import build_schema

ROOT = Path(__file__).resolve().parents[2]
#: Where `extensions.code` values are written besides DomainError.code.
EMITTERS = [*sorted((ROOT / "graph").rglob("*.py")), ROOT / "domain" / "persisted_documents.py"]
CODE = re.compile(r"[A-Z][A-Z0-9_]+")


def domain_errors() -> list[type[DomainError]]:
    found: list[type[DomainError]] = []
    pending = [DomainError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def bare(cls: type[DomainError]) -> DomainError:
    """An instance without its constructor (each takes other arguments): what to_graphql reads."""
    error = cls.__new__(cls)
    error.message = "m"
    for name in ("fields", "required", "available", "limit", "retry_after_seconds"):
        setattr(error, name, [] if name == "fields" else 1)
    return error


def constants(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
            found[target.id] = value.value
    return found


def strings_in(node: ast.AST | None, names: dict[str, str]) -> set[str]:
    """Code-like strings an expression can evaluate to: constants, module constants, both sides of an if."""
    out: set[str] = set()
    for part in ast.walk(node) if node is not None else ():
        if isinstance(part, ast.Constant) and isinstance(part.value, str) and CODE.fullmatch(part.value):
            out.add(part.value)
        elif isinstance(part, ast.Name) and part.id in names and CODE.fullmatch(names[part.id]):
            out.add(names[part.id])
    return out


def emitted_codes() -> set[str]:
    """`{"code": X}`, `x["code"] = X`, `.setdefault("code", X)`, a `code=X` default or keyword,
    and the refusals' positional codes (`DocumentRefused(NOT_FOUND, ...)`)."""
    codes: set[str] = set()
    for path in EMITTERS:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = constants(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "code":
                        codes |= strings_in(value, names)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Subscript) and getattr(target.slice, "value", None) == "code":
                        codes |= strings_in(node.value, names)
            elif isinstance(node, ast.Call):
                func = node.func
                setdefault = isinstance(func, ast.Attribute) and func.attr == "setdefault" and len(node.args) > 1
                if setdefault and getattr(node.args[0], "value", None) == "code":
                    codes |= strings_in(node.args[1], names)
                codes |= {c for k in node.keywords if k.arg == "code" for c in strings_in(k.value, names)}
                if isinstance(func, ast.Name) and func.id.endswith(("Refused", "Problem")) and node.args:
                    codes |= strings_in(node.args[0], names)
            elif isinstance(node, ast.arguments):
                params = [*node.posonlyargs, *node.args]
                for arg, default in zip(params[len(params) - len(node.defaults) :], node.defaults, strict=True):
                    if arg.arg == "code":
                        codes |= strings_in(default, names)
                for arg, kw_default in zip(node.kwonlyargs, node.kw_defaults, strict=True):
                    if arg.arg == "code":
                        codes |= strings_in(kw_default, names)
    return codes


def test_result_codes_are_the_domain_errors_a_union_member_carries() -> None:
    in_unions = {cls.code for cls in domain_errors() if cls is not DomainError and to_graphql(bare(cls)) is not None}
    assert in_unions == set(RESULT_CODES)


def test_every_producible_code_is_documented_and_nothing_else() -> None:
    produced = {cls.code for cls in domain_errors() if cls is not DomainError} | emitted_codes()
    assert produced - set(ALL_CODES) == set(), "document these in graph/error_codes.py and docs/clients.md"
    assert set(ALL_CODES) - produced == set(), "documented, but nothing produces them"
    assert not set(RESULT_CODES) & set(REQUEST_CODES)


def test_the_schema_lists_every_code_on_the_error_interface() -> None:
    error = build_schema().graphql_schema.get_type("Error")
    description = error.description if error is not None else None
    assert description is not None
    for code in ALL_CODES:
        assert f"`{code}`" in description, code


def test_docs_clients_lists_every_code_with_its_meaning() -> None:
    text = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")
    section = text.split("### Error codes", 1)[1].split("\n#", 1)[0]
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| [^|]+ \| (.+) \|$", section, flags=re.M))
    assert set(rows) == set(ALL_CODES)
    for code, meaning in ALL_CODES.items():
        assert rows[code] == meaning, code
