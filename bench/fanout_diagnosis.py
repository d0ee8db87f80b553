"""`bench/fanout.py --diagnose`: where the latency tail comes from, measured in the server and the client.

The server runs with bench/diagnostics on its PYTHONPATH (a `sitecustomize` that records every
garbage collection: generation, start, duration). The bench marks its phases (connecting,
warm-up, measuring) on the same monotonic clock and records its own collections, so each pause
is shown in the phase it fell in, on the side it happened. `--census` also writes the server's
tracked objects by type (idle and with subscribers) and tracemalloc's top allocation sites.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DIAGNOSTICS = Path(__file__).resolve().parent / "diagnostics"


def server_env(tmp: Path, *, census: bool) -> dict[str, str]:
    """The environment that makes a `genhub serve` record its collections into `tmp`."""
    env = {
        "PYTHONPATH": str(DIAGNOSTICS),
        "GENHUB_BENCH_DIAG": str(tmp / "diag.json"),
    }
    if census:
        env["GENHUB_BENCH_TRACEMALLOC"] = "6"
        env["GENHUB_BENCH_YOUNG"] = "1"
    return env


@dataclass
class Diagnosis:
    tmp: Path
    census: bool = False
    phases: list[tuple[str, float]] = field(default_factory=list)
    client: list[tuple[int, float, float, float]] = field(default_factory=list)
    _started: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = (time.monotonic(), time.thread_time())
        else:
            wall, cpu = time.monotonic() - self._started[0], time.thread_time() - self._started[1]
            self.client.append((info["generation"], self._started[0], wall, cpu))

    def mark(self, name: str) -> None:
        """The phase `name` starts now (it lasts until the next mark)."""
        self.phases.append((name, time.monotonic()))

    def snapshot(self, pid: int) -> None:
        """With --census: the server writes its object census (and tracemalloc's top sites)."""
        if self.census:
            os.kill(pid, signal.SIGUSR1)
            os.kill(pid, signal.SIGUSR2)

    def report(self, server_pid: int) -> None:
        gc.callbacks.remove(self._on_gc)
        found = self.tmp / f"diag.json.{server_pid}"
        lines = found.read_text().splitlines() if found.exists() else []
        server: list[list[Any]] = [c for line in lines for c in json.loads(line)[0]]
        print(
            "\n    garbage collections by phase, generations 0 | 1 | 2: count, CPU s in all, longest (wall ms / CPU ms)"
        )
        sides = (("server", [(g, s, w, c) for g, s, w, c, _ in server]), ("client", self.client))
        for side, records in sides:
            for i, (name, start) in enumerate(self.phases):
                end = self.phases[i + 1][1] if i + 1 < len(self.phases) else float("inf")
                inside = [(g, w, c) for g, s, w, c in records if start <= s < end]
                cells = []
                for generation in (0, 1, 2):
                    mine = [(w, c) for g, w, c in inside if g == generation]
                    longest = max(mine, default=(0.0, 0.0))
                    cells.append(
                        f"{len(mine):5d} {sum(c for _, c in mine):6.3f} {longest[0] * 1000:6.1f}/{longest[1] * 1000:5.1f}"
                    )
                print(f"    {side:6s} {name:10s} " + " | ".join(cells))
        measuring = dict(self.phases).get("measuring", float("inf"))
        long_ones = [(s - measuring, g, w, c, n) for g, s, w, c, n in server if s >= measuring and w > 0.01]
        if long_ones:
            shown = ", ".join(
                f"+{t:.1f}s gen{g} {w * 1000:.0f}/{c * 1000:.0f} ms ({n} freed)" for t, g, w, c, n in long_ones[:12]
            )
            print(f"    server collections over 10 ms (wall/CPU) after measuring began: {shown}")
        young = [y for line in lines for y in json.loads(line)[1]]
        if young:
            print(f"    largest young generation examined: {max(n for _, n, _ in young)} objects")
        for line in lines:
            for name, count in json.loads(line)[2][:15]:
                print(f"      {count:8d} {name}")
        for path in sorted(self.tmp.glob(f"diag.json.{server_pid}.*")):
            print(f"\n    {path.name}:")
            for text in path.read_text().splitlines()[:40]:
                print(f"      {text}")
