"""What the wrk benchmarks of a running server share (bench/generate.py, bench/auth.py).

Their command-line options, a server process started and waited for until it answers, one
`wrk` run and its numbers, and the variants measured taking turns, round after round and
mode after mode (this machine's speed drifts over a minute, so no variant gets a better
stretch of it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bench.processes import running as running  # the benchmarks' servers: bench/processes.py
from bench.processes import tree_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
GENHUB = str(Path(sys.executable).with_name("genhub"))
MODES = ("saturated", "paced")  # no think time (closed loop); exponential think time near an offered rate

#: Each variant's runs, by mode: wrk's numbers plus `server_cpu_s`, `wrk_cpu_s` and `rps`.
Runs = dict[str, dict[str, list[dict[str, float]]]]


def round_options(
    parser: argparse.ArgumentParser, *, variant: str, clients: int, rounds: int, rate: float, warmup: int
) -> None:
    """The options `take_turns` is run with, with a script's defaults; `variant` names what takes turns."""
    parser.add_argument("--clients", type=int, default=clients)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=rounds, help=f"runs of each {variant} and mode, interleaved")
    parser.add_argument("--rate", type=float, default=rate, help="offered requests/s for the paced runs")
    parser.add_argument("--warmup", type=int, default=warmup, help="seconds of the unmeasured first run of each")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="which measurements to take")


def wrk_installed() -> bool:
    """Whether `wrk` is on the PATH (when not, says how to install it)."""
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk")
        return False
    return True


def server_env(*, database_url: str, jwt_secret: str, **settings: str) -> dict[str, str]:
    """This process's environment with a benchmarked server's settings: quiet logs, no demo data."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": jwt_secret,
        "ENVIRONMENT": "development",
        "SEED_DEMO": "false",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        **settings,
    }


def run_wrk(
    url: str, script: str, *, clients: int, duration: int, env: Mapping[str, str], threads: int = 1
) -> dict[str, float]:
    """One wrk run of bench/`script` (which prints a JSON line of results), with wrk's own CPU time and req/s."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{clients}", f"-d{duration}s", "--timeout", "5s"]
        + ["-s", str(ROOT / "bench" / script), url],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    result["wrk_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def take_turns(
    servers: Mapping[str, subprocess.Popen[bytes]],
    run: Callable[[str, int, float], dict[str, float]],
    *,
    warmup: int,
    duration: int,
    rounds: int,
    modes: Sequence[str],
    think_ms: float,
) -> Runs:
    """Each variant warmed up once, then measured in every round and mode, in turns.

    `servers` names the process whose CPU time each variant's runs are charged (variants may
    share one); `run(variant, seconds, think_ms)` is one wrk run of it.
    """
    for variant in servers:
        run(variant, warmup, 0.0)  # pools and caches; not counted
    runs: Runs = {variant: {mode: [] for mode in MODES} for variant in servers}
    for _ in range(rounds):
        for mode in (m for m in MODES if m in modes):
            think = think_ms if mode == "paced" else 0.0
            for variant, proc in servers.items():
                cpu0 = tree_cpu_seconds(proc.pid)
                result = run(variant, duration, think)
                result["server_cpu_s"] = tree_cpu_seconds(proc.pid) - cpu0
                runs[variant][mode].append(result)
    return runs
