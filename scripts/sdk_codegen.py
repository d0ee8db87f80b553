"""Generates the SDKs in sdk/ from schema.graphql and sdk/operations, or checks the committed ones.

`make sdk` (this script without arguments) regenerates them; `--check` (run by
tests/integration/test_sdk.py) regenerates into a temporary directory and fails, naming the
files, when the committed ones differ. Both type-check the TypeScript with `tsc`.

- TypeScript: graphql-codegen (node/node_modules, installed by `npm ci` from node/package-lock.json)
  with sdk/typescript/codegen.ts: possible-types.ts/.json (Apollo's `possibleTypes`) and graphql.ts.
- The trusted-documents manifest of every SDK operation: Apollo's generator
  (@apollo/generate-persisted-query-manifest, sdk/typescript/persisted-query-manifest.config.json)
  writes sdk/typescript/persisted-query-manifest.json, each body as Apollo Client sends it
  (`__typename` added), each id the SHA-256 of its body; `genhub documents check` accepts it.
  That generator takes one operation per document, so it reads sdk/operations split into one
  file per operation (sdk/operations-by-name/, made in the scratch tree only). A copy of it goes
  into the Python package, beside genhub_client/trusted_documents.py, which sends the client's
  operations by those ids.
- Python: ariadne-codegen with the [tool.ariadne-codegen] table of sdk/python/pyproject.toml:
  the package sdk/python/genhub_client. Its trusted_documents.py is written by hand and lives only
  there: generation leaves it in place (and fails when it is missing, or when ariadne-codegen
  would write a module of that name). ariadne-codegen needs graphql-core < 3.3 and the server
  >= 3.3, so it runs from a venv of its own, .venv-codegen/, installed from
  sdk/python/requirements-codegen.lock and remade when that lock changes.

Generation runs in a copy of the inputs laid out as in the repository, so both generators see
the same relative paths (and write the same text) whether they regenerate or check.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graphql import OperationDefinitionNode, parse, print_ast  # noqa: E402

from tests.fixtures.node_tools import NodeTools, install  # noqa: E402  (the one place npm ci is run from)

#: What the generators read, copied into the scratch tree.
INPUTS = (
    "schema.graphql",
    "sdk/operations",
    "sdk/typescript",
    "sdk/python/pyproject.toml",
    "sdk/python/py.typed",
)
TYPESCRIPT = "sdk/typescript"
MANIFEST = "persisted-query-manifest.json"
TYPESCRIPT_OUTPUTS = ("possible-types.ts", "possible-types.json", "graphql.ts", MANIFEST)
OPERATIONS = "sdk/operations"
OPERATIONS_BY_NAME = "sdk/operations-by-name"  # one operation per file, for Apollo's manifest generator
PYTHON_PACKAGE = "sdk/python/genhub_client"
#: Modules of the Python package written by hand: neither generated, compared nor replaced.
HAND_WRITTEN = (f"{PYTHON_PACKAGE}/trusted_documents.py",)
CODEGEN_VENV = ROOT / ".venv-codegen"
CODEGEN_LOCK = ROOT / "sdk" / "python" / "requirements-codegen.lock"
STAMP = ".genhub-installed"


class GenerationFailed(RuntimeError):
    """A generator or the type check failed; the message holds its output."""


def _run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None, what: str) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise GenerationFailed(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def codegen_python() -> Path:
    """The interpreter of .venv-codegen, (re)installed when the lock changed (once across processes)."""
    digest = hashlib.sha256(CODEGEN_LOCK.read_bytes()).hexdigest()
    python = CODEGEN_VENV / "bin" / "python"
    stamp = CODEGEN_VENV / STAMP
    uv = Path(sys.executable).with_name("uv")
    with ROOT.joinpath(".venv-codegen.install-lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == digest and python.exists():
            return python
        shutil.rmtree(CODEGEN_VENV, ignore_errors=True)
        _run([str(uv), "venv", "--quiet", "--python", sys.executable, str(CODEGEN_VENV)], cwd=ROOT, what="uv venv")
        install_command = [str(uv), "pip", "install", "--quiet", "--python", str(python), "--require-hashes"]
        _run([*install_command, "-r", str(CODEGEN_LOCK)], cwd=ROOT, what="installing ariadne-codegen")
        stamp.write_text(digest)
    return python


def _stage(tree: Path, tools: NodeTools) -> None:
    for name in INPUTS:
        source, target = ROOT / name, tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    for output in TYPESCRIPT_OUTPUTS:  # generated afresh, never carried over
        (tree / TYPESCRIPT / output).unlink(missing_ok=True)
    _split_operations(tree / OPERATIONS, tree / OPERATIONS_BY_NAME)
    # Node resolves packages by walking up from the importing file: the tree's node_modules is node/'s.
    (tree / "node_modules").symlink_to(tools.root / "node_modules", target_is_directory=True)


def _split_operations(source: Path, target: Path) -> None:
    """Each named operation of `source`/*.graphql alone in `target`/<name>.graphql."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.graphql")):
        for definition in parse(path.read_text(encoding="utf-8")).definitions:
            if not isinstance(definition, OperationDefinitionNode) or definition.name is None:
                raise GenerationFailed(f"{path.name}: every definition must be a named operation")
            written = target / f"{definition.name.value}.graphql"
            if written.exists():
                raise GenerationFailed(f"{path.name}: two operations are named {definition.name.value}")
            written.write_text(print_ast(definition) + "\n", encoding="utf-8")


def generate(tree: Path) -> None:
    """Stage the inputs in `tree` (an empty directory) and run both generators and `tsc` there."""
    tools = install()
    python = codegen_python()
    _stage(tree, tools)
    modules = tree / "node_modules"
    typescript = tree / TYPESCRIPT
    codegen_cli = modules / "@graphql-codegen" / "cli" / "cjs" / "bin.js"
    node_env = tools.env()
    _run(
        [str(tools.node), str(codegen_cli), "--config", "codegen.ts"],
        cwd=typescript,
        env=node_env,
        what="graphql-codegen",
    )
    manifest_cli = modules / "@apollo" / "generate-persisted-query-manifest" / "cli.js"
    _run(
        [str(tools.node), str(manifest_cli), "--config", "persisted-query-manifest.config.json"],
        cwd=typescript,
        env=node_env,
        what="generate-persisted-query-manifest",
    )
    tsc = modules / "typescript" / "bin" / "tsc"
    _run([str(tools.node), str(tsc), "-p", "tsconfig.json"], cwd=typescript, env=node_env, what="tsc (type check)")
    ariadne = python.with_name("ariadne-codegen")
    _run([str(ariadne), "--config", "pyproject.toml"], cwd=tree / "sdk" / "python", what="ariadne-codegen")
    clashing = [name for name in HAND_WRITTEN if (tree / name).exists()]
    if clashing:
        raise GenerationFailed(f"ariadne-codegen now writes the hand-written {', '.join(clashing)}: rename one")
    # The Python client sends operations by these ids on a trusted-documents server (trusted_documents.py).
    shutil.copy2(typescript / MANIFEST, tree / PYTHON_PACKAGE / MANIFEST)


def missing_hand_written(root: Path) -> list[str]:
    """The hand-written modules of the Python package that `root` lacks."""
    return [name for name in HAND_WRITTEN if not (root / name).is_file()]


def outputs(tree: Path) -> dict[str, bytes]:
    """The generated files under `tree`, by their path in the repository (hand-written ones left out)."""
    found = {f"{TYPESCRIPT}/{name}": (tree / TYPESCRIPT / name).read_bytes() for name in TYPESCRIPT_OUTPUTS
             if (tree / TYPESCRIPT / name).exists()}  # fmt: skip
    package = tree / PYTHON_PACKAGE
    for path in sorted(package.rglob("*")) if package.exists() else []:
        name = path.relative_to(tree).as_posix()
        if path.is_file() and "__pycache__" not in path.parts and name not in HAND_WRITTEN:
            found[name] = path.read_bytes()
    return found


def stale_files(committed: dict[str, bytes], fresh: dict[str, bytes]) -> list[str]:
    """Paths whose committed content differs from a fresh generation, or that only one side has."""
    return sorted(name for name in committed.keys() | fresh.keys() if committed.get(name) != fresh.get(name))


def write(fresh_tree: Path, root: Path = ROOT) -> None:
    """Replace the generated files under `root` by those of `fresh_tree`, keeping the hand-written ones."""
    for name in outputs(root):
        if name.startswith(f"{PYTHON_PACKAGE}/"):  # a module of an operation removed since goes too
            (root / name).unlink()
    for name, content in outputs(fresh_tree).items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed SDK files are stale")
    args = parser.parse_args(argv)
    missing = missing_hand_written(ROOT)
    if missing:
        sys.stderr.write(f"hand-written, not generated, and missing: {', '.join(missing)} (restore it from git)\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="genhub-sdk-") as scratch:
        tree = Path(scratch)
        try:
            generate(tree)
        except GenerationFailed as failure:
            sys.stderr.write(f"{failure}\n")
            return 2
        if not args.check:
            write(tree)
            print("regenerated sdk/typescript (with its trusted-documents manifest) and sdk/python/genhub_client")  # noqa: T201
            return 0
        stale = stale_files(outputs(ROOT), outputs(tree))
    if stale:
        listed = "\n  ".join(stale)
        sys.stderr.write(
            f"the generated SDK files differ from schema.graphql and sdk/operations:\n  {listed}\n"
            "run `make sdk` (or `make schema`, which runs it too) and commit the result\n"
        )
        return 1
    print("sdk/ is up to date")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
