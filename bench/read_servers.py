"""Servers and load for bench/read.py: each server in its own process group, its CPU time
read from /proc by group, load from wrk (bench/wrk_read.lua)."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

LUA = Path(__file__).with_name("wrk_read.lua")
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A started server: where to send the page's request, and its process group."""

    name: str
    url: str
    body_file: Path
    pgid: int
    auth: str = ""
    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: bytes, auth: str = "", timeout: float = 10) -> bytes:
    headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
    with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=timeout) as resp:
        return bytes(resp.read())


def _ready(probe: str) -> bool:
    try:
        if probe.endswith("/health"):
            urllib.request.urlopen(probe, timeout=2).close()
        else:  # a GraphQL endpoint: {__typename} must answer with data
            return b'"data"' in post(probe, b'{"query":"{__typename}"}', timeout=2)
        return True
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def process_group(name: str, cmd: list[str], env: dict[str, str], cwd: Path, log: Path, probe: str) -> Iterator[int]:
    """Start cmd in a new session (its own process group), wait until probe answers, yield
    the group id; on exit TERM the group, KILL it after 15 s. Only that group is signalled."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not _ready(probe):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; its log ({log}):\n{log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield proc.pid
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            if not group_ticks(proc.pid):
                return
            time.sleep(0.2)


def group_ticks(pgid: int) -> dict[int, int]:
    """utime + stime (clock ticks) of every live process in the group, by pid."""
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    return ticks


def cpu_between(before: dict[int, int], after: dict[int, int]) -> float:
    """Seconds of CPU the group used between two snapshots (processes alive at the end)."""
    return sum(t - before.get(pid, 0) for pid, t in after.items()) / CLK_TCK


def run_wrk(
    server: Server, connections: int, duration: float, think_ms: float = 0.0, threads: int = 1
) -> dict[str, float]:
    """One wrk run against the server; adds req/s, server CPU ms per request and wrk's CPU share."""
    env = {**os.environ, "READ_BODY_FILE": str(server.body_file), "READ_AUTH": server.auth}
    env["READ_THINK_MS"] = f"{think_ms:.1f}"
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s"]
    before, rusage = group_ticks(server.pgid), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([*cmd, "-s", str(LUA), server.url], env=env, capture_output=True, text=True, check=True)
    cpu = cpu_between(before, group_ticks(server.pgid))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    r: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    secs = r["duration_us"] / 1e6
    r["rps"] = r["requests"] / secs
    r["cpu_ms_per_req"] = cpu * 1000 / max(r["requests"], 1)
    r["server_cpu_pct"] = cpu / secs * 100
    wrk_cpu = (after.ru_utime + after.ru_stime) - (rusage.ru_utime + rusage.ru_stime)
    r["wrk_cpu_pct"] = wrk_cpu / secs * 100
    return r


def machine_busy(seconds: float) -> float:
    """Percent of all cores busy over a short window (other jobs on the machine)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]

    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 100 * (1 - (i1 - i0) / max(t1 - t0, 1))
