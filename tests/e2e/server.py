"""Start `genhub serve` as a real subprocess on a free port and wait until it answers."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

GENHUB = str(Path(sys.executable).with_name("genhub"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def serve(env: dict[str, str], cwd: Path, *, args: tuple[str, ...] = (), timeout: float = 60.0) -> Iterator[Server]:
    port = free_port()
    log_path = cwd / f"serve-{port}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "STORAGE_", "S3_"))}
    full_env.update({"PORT": str(port), "LOG_FORMAT": "json", **env})
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [GENHUB, "serve", *args], cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"genhub serve exited with {process.returncode}:\n{server.output()}")
            try:
                if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"genhub serve did not answer within {timeout}s:\n{server.output()}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
