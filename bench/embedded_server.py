"""`genhub serve` on the embedded defaults (SQLite, in-process queue and fan-out, local disk) as a subprocess,
on a free port, for the benchmarks that need no PostgreSQL or Redis (bench/upload.py, bench/teardown.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.processes import free_port, running

GENHUB = str(Path(sys.executable).with_name("genhub"))


@contextmanager
def embedded_server(env: dict[str, str], workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Its base URL and process, once /health answers; `env` on top of ours without any DATABASE_, REDIS_,
    STORAGE_ or S3_ setting; its log in `workdir`/serve.log."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "STORAGE_", "S3_"))}
    full_env.update({"PORT": str(port), "PUBLIC_BASE_URL": url, "LOG_LEVEL": "WARNING", **env})
    with running(
        "genhub serve", [GENHUB, "serve"], full_env, f"{url}/health", cwd=workdir, log=workdir / "serve.log", timeout=60
    ) as process:
        yield url, process
