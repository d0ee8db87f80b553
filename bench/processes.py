"""What the benchmarks share about processes: a free port, a server started and stopped, a process's RSS and CPU
time (Linux /proc)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def running(
    name: str,
    command: list[str],
    env: Mapping[str, str],
    ready_url: str,
    *,
    cwd: Path = ROOT,
    log: Path | None = None,
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` started in `cwd`, yielded once `ready_url` answers (within `timeout` seconds), then stopped.

    Its output goes to `log` (stdout and stderr) when given, else stderr is kept for the error of a start that
    failed."""
    out = log.open("wb") if log is not None else None
    stdout = out if out is not None else subprocess.DEVNULL
    stderr = subprocess.STDOUT if out is not None else subprocess.PIPE
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr)

    def output() -> str:
        if log is not None:
            return log.read_text(errors="replace")
        return proc.stderr.read().decode() if proc.stderr else ""

    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(ready_url, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{name} did not start: {output()}") from None
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if out is not None:
            out.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its children that are still alive (uvicorn workers)."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            total += cpu_seconds(p)
        except FileNotFoundError:
            continue
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in map(int, children):
            found += [child, *_children(child)]
    return found
