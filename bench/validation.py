"""CPU to judge the worst documents the query limits allow, one document at a time, uncached.

Each document is built to cost as much as the limits let it: fragment chains and fan-outs
at the spread limit, aliases and depth one past their limits, nested connections, and a
document of as many tokens as MAX_QUERY_TOKENS allows. Every one is planned the way a
request is (parse with the token limit, our screen, graphql-core's validation, fixed
costs: `OperationPlans._plan`, bypassing the cache, as a document never seen before
is) and the script prints CPU per document (median and max over `--rounds`) and its
verdict. For comparison, the same documents are judged by strawberry's own depth and
alias rules (which expand every spread) where that ends in reasonable time.

    .venv/bin/python bench/validation.py [--rounds 200] [--before REV]

With `--before REV`, the report's fragment chains and a field repeated 332 times are also
planned, once each, by the code of commit REV (checked out in a temporary worktree and run
in a subprocess with this interpreter), to show what the same documents cost there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphql import parse, validate  # noqa: E402
from strawberry.extensions.max_aliases import create_validator as strawberry_aliases  # noqa: E402
from strawberry.extensions.query_depth_limiter import create_validator as strawberry_depth  # noqa: E402

from graph.document_shape import MAX_SAME_NAME  # noqa: E402
from graph.limits import query_limits  # noqa: E402
from graph.schema import build_schema  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402


def chain(levels: int, fan_out: int, leaf: str = "me { id email }") -> str:
    fragments = [f"fragment F0 on Query {{ {leaf} }}"]
    fragments += [f"fragment F{i} on Query {{ {' '.join([f'...F{i - 1}'] * fan_out)} }}" for i in range(1, levels + 1)]
    return f"query Chain {{ ...F{levels} }}\n" + "\n".join(fragments)


def diamond(width: int, levels: int) -> str:
    """Every fragment of a level spreads every fragment of the level below."""
    lines = [f"fragment L0x{j} on Query {{ me {{ id }} }}" for j in range(width)]
    for i in range(1, levels + 1):
        spreads = " ".join(f"...L{i - 1}x{j}" for j in range(width))
        lines += [f"fragment L{i}x{j} on Query {{ {spreads} }}" for j in range(width)]
    roots = " ".join(f"...L{levels}x{j}" for j in range(width))
    return f"query Diamond {{ {roots} }}\n" + "\n".join(lines)


def aliases(count: int) -> str:
    return "query Aliases { " + " ".join(f"a{i}: me {{ id }}" for i in range(count)) + " }"


def deep(depth: int) -> str:
    inner = "id"
    for _ in range(depth):
        inner = f"board {{ generations(first: 1) {{ edges {{ node {{ {inner} }} }} }} }}"
    return f"query Deep {{ generations(first: 1) {{ edges {{ node {{ {inner} }} }} }} }}"


def nested_pages() -> str:
    return (
        "query Pages { generations(first: 100) { edges { node { id board { "
        "generations(first: 100) { edges { node { id board { generations(first: 100) { edges { node { id } } } } } } } "
        "} } } } }"
    )


def widest(tokens: int) -> str:
    """As many tokens as the limit allows, spent on one field repeated: a valid document whose
    fields graphql-core's OverlappingFieldsCanBeMerged compares pairwise."""
    fields, used = [], 4
    while used + 6 < tokens:
        fields.append("me { id email role }")
        used += 6
    return "query Wide { " + " ".join(fields) + " }"


def largest_accepted(tokens: int, repeats: int) -> str:
    """Root fields each repeated as often as allowed, until the token limit: valid and accepted."""
    fields = ["me { id email role }", "credits { balance reserved available }", "models { id slug name kind }"]
    fields += ["boards { id name }", "generations(first: 1) { edges { cursor } }", "__typename"]
    chosen, used = [], 4
    for field in fields:
        size = len(field.replace("(", " ( ").replace(")", " ) ").replace(":", " : ").split())
        for _ in range(repeats):
            if used + size >= tokens:
                break
            chosen.append(field)
            used += size
    return "query Largest { " + " ".join(chosen) + " }"


def aliased_pages(count: int) -> str:
    page = "generations(first: 1) { edges { cursor node { id prompt status progress createdAt } } }"
    return "query Aliased { " + " ".join(f"p{i}: {page}" for i in range(count)) + " }"


def measure(judge: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Median and 95th percentile of CPU milliseconds per call."""
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        judge()
        samples.append((time.process_time() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--before", metavar="REV", help="also plan the report's documents with the code of REV")
    args = parser.parse_args()

    settings = Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    limits = query_limits(settings)
    schema = build_schema(limits=limits)
    plans = schema.plans
    assert plans is not None
    spreads = limits.max_spreads
    deepest = limits.max_fragments - 1
    documents = {
        "chain 8 levels x 8 (the report's)": chain(8, 8),
        f"chain at the spread limit ({(spreads - 1) // 8} levels x 8)": chain((spreads - 1) // 8, 8),
        f"chain at the fragment limit ({deepest} levels x {(spreads - 1) // deepest})": chain(
            deepest, (spreads - 1) // deepest
        ),
        f"chain one past the spread limit ({spreads + 1} spreads)": chain(1, spreads),
        "diamond 13 wide x 1 level (182 spreads)": diamond(13, 1),
        f"aliases one past the limit ({limits.max_aliases + 1})": aliases(limits.max_aliases + 1),
        f"depth one past the limit ({limits.max_depth + 1})": deep(limits.max_depth // 3),
        "three nested pages of 100 (cost)": nested_pages(),
        f"one field repeated up to the token limit ({limits.max_tokens})": widest(limits.max_tokens),
        f"largest accepted, fields repeated ({MAX_SAME_NAME} times each)": largest_accepted(
            limits.max_tokens, MAX_SAME_NAME
        ),
        f"largest accepted, aliases ({limits.max_aliases} pages of 1)": aliased_pages(limits.max_aliases),
    }
    print(
        f"limits: tokens {limits.max_tokens}, depth {limits.max_depth}, aliases {limits.max_aliases}, "
        f"fragments {limits.max_fragments}, spreads {limits.max_spreads}, cost {limits.max_cost}"
    )
    print(f"{'document':58} {'bytes':>6} {'median ms':>10} {'p95 ms':>8}  verdict")
    for name, query in documents.items():
        median, worst = measure(lambda q=query: plans._plan(q), args.rounds)  # type: ignore[misc]
        plan = plans._plan(query)
        verdict = plan.errors[0].message[:60] if plan.errors else "accepted"
        print(f"{name:58} {len(query):>6} {median:>10.2f} {worst:>8.2f}  {verdict}")

    print("\nthe same fan-outs under strawberry's depth and alias rules (each spread expanded):")
    rules = [strawberry_depth(limits.max_depth, None), strawberry_aliases(limits.max_aliases)]
    for levels in (2, 3, 4, 5, 6):
        document = parse(chain(levels, 8))
        median, _ = measure(lambda d=document: validate(schema.graphql_schema, d, rules), 3)  # type: ignore[misc]
        print(f"  chain {levels} levels x 8: {median:10.2f} ms (each level multiplies by about 8)")
    if args.before:
        before(args.before)


# Runs in a subprocess with another commit's code first on sys.path: plans each document of
# the JSON list on stdin once (uncached) and prints [CPU ms, first error] per document.
_PLAN_ELSEWHERE = """
import inspect, json, sys, time
sys.path.insert(0, sys.argv[1])
from graph.limits import query_limits
from graph.schema import build_schema
from infrastructure.settings import Settings
plans = build_schema(limits=query_limits(Settings(_env_file=None, environment="production"))).plans
two = len(inspect.signature(plans._plan).parameters) == 2  # older plans were keyed by (query, name)
out = []
for query in json.load(sys.stdin):
    started = time.process_time()
    plan = plans._plan(query, None) if two else plans._plan(query)
    out.append([(time.process_time() - started) * 1000, plan.errors[0].message[:60] if plan.errors else "no error when planned"])
print(json.dumps(out))
"""


def before(rev: str) -> None:
    documents = {f"chain {n} levels x 8": chain(n, 8) for n in (5, 6, 7, 8)}
    documents["one field repeated 332 times"] = "query W { " + " ".join(["me { id email role }"] * 332) + " }"
    with tempfile.TemporaryDirectory() as folder:
        tree = f"{folder}/tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", tree, rev], check=True)
        try:
            done = subprocess.run(
                [sys.executable, "-c", _PLAN_ELSEWHERE, tree],
                input=json.dumps(list(documents.values())),
                capture_output=True,
                text=True,
                check=True,
                timeout=900,
            )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tree], check=True)
    print(f"\nthe same documents planned once by the code of {rev}:")
    for name, (ms, verdict) in zip(documents, json.loads(done.stdout), strict=True):
        print(f"  {name:34} {ms:10.0f} ms  {verdict}")


if __name__ == "__main__":
    main()
