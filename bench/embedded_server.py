"""`genhub serve` on the embedded defaults (SQLite, in-process queue and fan-out, local disk) as a subprocess,
on a free port, for the benchmarks that need no PostgreSQL or Redis (bench/upload.py, bench/teardown.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.processes import free_port

GENHUB = str(Path(sys.executable).with_name("genhub"))


@contextlib.contextmanager
def embedded_server(env: dict[str, str], workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Its base URL and process, once /health answers; `env` on top of ours without any DATABASE_, REDIS_,
    STORAGE_ or S3_ setting; its log in `workdir`/serve.log."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "STORAGE_", "S3_"))}
    full_env.update({"PORT": str(port), "PUBLIC_BASE_URL": url, "LOG_LEVEL": "WARNING", **env})
    log = (workdir / "serve.log").open("w")
    process = subprocess.Popen([GENHUB, "serve"], cwd=workdir, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError((workdir / "serve.log").read_text())
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + (workdir / "serve.log").read_text())
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
