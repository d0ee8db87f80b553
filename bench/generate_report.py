"""The report of bench/generate.py: each server's median run, throughput ratios, paced latency percentiles."""

from __future__ import annotations

import argparse
import statistics


def line(name: str, r: dict[str, float], server_cpu: float) -> str:
    secs = r["duration_us"] / 1e6
    per_request = server_cpu / max(r["requests"], 1) * 1e6
    return (
        f"{name:<12} {r['rps']:6.0f} req/s  p50 {r['p50_us'] / 1000:6.2f} ms  p95 {r['p95_us'] / 1000:6.2f} ms  "
        f"p99 {r['p99_us'] / 1000:6.2f} ms  max {r['max_us'] / 1000:6.1f} ms  failed {int(r['failed'])}  "
        f"server CPU {server_cpu / secs * 100:4.0f}% ({per_request:4.0f} us/req)  wrk CPU {r['wrk_cpu_s'] / secs * 100:3.0f}%"
    )


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median throughput (its latencies belong to it, not to a mix of runs)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def report(kinds: list[str], runs: dict[str, dict[str, list[dict[str, float]]]], args: argparse.Namespace) -> None:
    if "saturated" in args.modes:
        report_saturated(kinds, runs, args)
    if "paced" in args.modes:
        report_paced(kinds, runs, args)


def report_saturated(
    kinds: list[str], runs: dict[str, dict[str, list[dict[str, float]]]], args: argparse.Namespace
) -> None:
    saturated = {k: median_run(runs[k]["saturated"]) for k in kinds}
    print(
        f"\n(a) saturated, closed loop (latency here is mostly queueing: clients / throughput); median of {args.rounds}"
    )
    for kind in kinds:
        print(line(kind, saturated[kind], saturated[kind]["server_cpu_s"]))
    for reference, note in (
        ("baseline", "target >= 0.80; same I/O on both sides"),
        ("baseline-sql", "SQL + XADD only"),
    ):
        if "genhub" in runs and reference in runs:
            # Per round: both servers ran back to back, so slow drifts of the machine cancel out.
            ratios = [
                g["rps"] / b["rps"]
                for g, b in zip(runs["genhub"]["saturated"], runs[reference]["saturated"], strict=True)
            ]
            each = " ".join(f"{r:.2f}" for r in ratios)
            print(f"throughput ratio genhub/{reference}: {statistics.median(ratios):.2f} (rounds: {each})  ({note})")


def report_paced(
    kinds: list[str], runs: dict[str, dict[str, list[dict[str, float]]]], args: argparse.Namespace
) -> None:
    think_ms = args.clients / args.rate * 1000
    paced = {k: median_run(runs[k]["paced"]) for k in kinds}
    print(
        f"\n(b) paced: {args.clients} clients offering ~{args.rate:.0f} req/s (exponential think time, mean "
        f"{think_ms:.0f} ms); median of {args.rounds}"
    )
    for kind in kinds:
        print(line(kind, paced[kind], paced[kind]["server_cpu_s"]))
    # At a fixed offered load every run serves about the same throughput, so the median run
    # says little about latency: the verdict takes the median of each percentile over rounds.
    for kind in kinds:
        p50s = [r["p50_us"] / 1000 for r in runs[kind]["paced"]]
        p99s = [r["p99_us"] / 1000 for r in runs[kind]["paced"]]
        targets = " (targets: p50 <= 5, p99 <= 25)" if kind == "genhub" else ""
        print(
            f"{kind} paced, median of rounds: p50 {statistics.median(p50s):.2f} ms, "
            f"p99 {statistics.median(p99s):.2f} ms{targets}; "
            f"rounds p50 {' '.join(f'{v:.1f}' for v in p50s)} / p99 {' '.join(f'{v:.1f}' for v in p99s)}"
        )
