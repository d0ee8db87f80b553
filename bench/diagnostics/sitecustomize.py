"""Diagnostics for a server process under bench/fanout.py --diagnose (on its PYTHONPATH only).

GENHUB_BENCH_DIAG names the file (suffixed with the process id) that receives every garbage
collection: generation, start (monotonic seconds), wall and CPU duration, objects collected;
appended at most once a second and at exit, one JSON line per batch. SIGUSR1 writes the tracked
objects by type (`.census.<time>.txt`); with GENHUB_BENCH_TRACEMALLOC=N (frames), tracemalloc
runs from start-up and SIGUSR2 writes the top allocation sites (`.malloc.txt`). With
GENHUB_BENCH_YOUNG=1, each young collection also records how many objects it examined (and,
the first time they pass 100,000, those objects by type): CPython starts a young collection on
allocations minus deallocations, so a process that replaces objects one for one lets its young
generation grow unseen.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import signal
import time
from collections import Counter
from typing import Any

_base = os.environ.get("GENHUB_BENCH_DIAG")

if _base:
    _path = f"{_base}.{os.getpid()}"
    _collections: list[tuple[int, float, float, float, int]] = []
    _started = [0.0, 0.0]
    _written = [0.0]
    _young = bool(os.environ.get("GENHUB_BENCH_YOUNG"))
    _young_types: list[tuple[str, int]] = []
    _young_seen: list[tuple[float, int, tuple[int, str]]] = []

    def _write() -> None:
        # Appended (one JSON list per line): rewriting a growing file would itself stall the loop.
        with open(_path, "a") as out:
            out.write(json.dumps([_collections, _young_seen, _young_types]) + "\n")
        _collections.clear()
        _young_seen.clear()

    def _on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            if _young and info["generation"] < 2:
                young = [o for g in range(info["generation"] + 1) for o in gc.get_objects(g)]
                sizes = [(len(o), type(o).__qualname__) for o in young if isinstance(o, (list, dict, set, tuple))]
                _young_seen.append((time.monotonic(), len(young), max(sizes, default=(0, ""))))
                if len(young) > 100_000 and not _young_types:
                    _young_types.extend(
                        Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in young).most_common(60)
                    )
            _started[0], _started[1] = time.monotonic(), time.thread_time()
            return
        now = time.monotonic()
        wall, cpu = now - _started[0], time.thread_time() - _started[1]
        _collections.append((info["generation"], _started[0], wall, cpu, info["collected"]))
        if now - _written[0] > 1.0:
            _written[0] = now
            _write()

    gc.callbacks.append(_on_gc)
    atexit.register(_write)

    def _census(signum: int, frame: Any) -> None:
        objects = gc.get_objects()
        counts = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
        with open(f"{_path}.census.{int(time.monotonic())}.txt", "w") as out:
            out.write(f"{len(objects)} tracked objects (not frozen), {gc.get_freeze_count()} frozen\n")
            for name, n in counts.most_common(150):
                out.write(f"{n:9d} {name}\n")

    signal.signal(signal.SIGUSR1, _census)

    _frames = int(os.environ.get("GENHUB_BENCH_TRACEMALLOC", "0"))
    if _frames:
        import tracemalloc

        tracemalloc.start(_frames)

        def _top_sites(signum: int, frame: Any) -> None:
            snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            stats = snapshot.statistics("traceback")
            with open(f"{_path}.malloc.txt", "w") as out:
                out.write(f"traced: {sum(s.size for s in stats) / 1048576:.1f} MiB; top sites, innermost frame last\n")
                for stat in stats[:60]:
                    frames = " < ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in reversed(stat.traceback))
                    out.write(f"{stat.size / 1024:8.0f} KiB {stat.count:7d} blocks  {frames}\n")

        signal.signal(signal.SIGUSR2, _top_sites)

# GENHUB_BENCH_CYCLES names the file that receives, on SIGUSR1, the cyclic garbage made since the last
# signal (bench/teardown.py): the automatic collector is off, the handler collects with DEBUG_SAVEALL,
# counts what it found by type, then frees it. Run the server with GC_PACING=false (the pacer collects).
_cycles_path = os.environ.get("GENHUB_BENCH_CYCLES")

if _cycles_path and not _base:
    gc.disable()
    _rounds = [0]

    def _count_cycles(signum: int, frame: Any) -> None:
        gc.unfreeze()  # the start-up heap, frozen by the app: its garbage is counted by the first round
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            found = gc.collect()
            counts = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        gc.collect()  # frees what was just counted
        gc.disable()
        _rounds[0] += 1
        with open(f"{_cycles_path}.{_rounds[0]}.tmp", "w") as out:
            json.dump({"unreachable": found, "types": counts.most_common(12)}, out)
        os.replace(f"{_cycles_path}.{_rounds[0]}.tmp", f"{_cycles_path}.{_rounds[0]}")

    signal.signal(signal.SIGUSR1, _count_cycles)
