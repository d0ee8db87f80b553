"""Benchmark what a closed connection leaves for the garbage collector: cyclic objects per connection.

Starts `genhub serve` on the embedded defaults with its automatic collector off
(bench/diagnostics/sitecustomize.py, GENHUB_BENCH_CYCLES; GC_PACING=false), then, for each kind:

- http: a POST /graphql query (`me`) on a connection of its own;
- ws:   a graphql-transport-ws connection: connection_init, `generationUpdated(id)`, its first `next`,
        then a close (every other one dropped without a close frame);
- sse:  a POST with `Accept: text/event-stream` for the same subscription, its first `next`, then a close,

runs `--connections` of them (10 at a time) and asks the server how many unreachable objects the
collector finds afterwards (DEBUG_SAVEALL; they are freed after counting). Objects that reference
counting frees never reach the collector: what it finds is what the connections left in reference
cycles, which a process under connection churn keeps until a full collection of its whole heap.
A warm-up round of each kind comes first (caches, lazily built objects) and is not counted.

    .venv/bin/python bench/teardown.py [--connections 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.embedded_server import embedded_server  # noqa: E402

DIAGNOSTICS = ROOT / "bench" / "diagnostics"
LOGIN = """mutation L($e: String!, $p: String!) { login(input: {email: $e, password: $p}) {
  ... on AuthPayload { accessToken } } }"""
DEMO = {"e": "demo@genhub.local", "p": "demo-password-123"}  # the embedded defaults' demo account
GENERATE = """mutation G($m: ID!) { generate(input: {modelId: $m, prompt: "a lighthouse"}) {
  __typename ... on GenerateSuccess { generation { id } } ... on Error { code message } } }"""
WATCH = "subscription ($id: ID!) { generationUpdated(id: $id) { at generation { id status } } }"
LANES = 10


class Server:
    def __init__(self, url: str, pid: int, cycles: Path) -> None:
        self.url, self.pid, self.cycles = url, pid, cycles
        self.rounds = 0

    def garbage(self) -> dict[str, Any]:
        """The cyclic garbage made since the last call (the server counts it on SIGUSR1)."""
        self.rounds += 1
        os.kill(self.pid, signal.SIGUSR1)
        path = Path(f"{self.cycles}.{self.rounds}")
        deadline = time.monotonic() + 60
        while not path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the server wrote no garbage count")
            time.sleep(0.05)
        found: dict[str, Any] = json.loads(path.read_text())
        return found


async def account(url: str) -> tuple[str, str]:
    """The demo account's token and one of its generations."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        logged_in = await client.post("/graphql", json={"query": LOGIN, "variables": DEMO})
        token = logged_in.json()["data"]["login"]["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        models = (await client.post("/graphql", json={"query": "{ models { id } }"}, headers=headers)).json()
        generated = await client.post(
            "/graphql",
            json={"query": GENERATE, "variables": {"m": models["data"]["models"][0]["id"]}},
            headers=headers,
        )
        answer = generated.json()["data"]["generate"]
        assert answer["__typename"] == "GenerateSuccess", answer
        return token, answer["generation"]["id"]


async def http_query(url: str, token: str, generation: str, n: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:  # a connection of its own
        response = await client.post(
            "/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200 and "errors" not in response.json(), response.text


async def ws_subscription(url: str, token: str, generation: str, n: int) -> None:
    ws = await websockets.connect(url.replace("http", "ws", 1) + "/graphql", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    try:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": WATCH, "variables": {"id": generation}}})
        )
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["type"] == "next", first
    finally:
        if n % 2:
            await ws.close()
        else:
            ws.transport.abort()  # a client that vanishes without a close frame


async def sse_subscription(url: str, token: str, generation: str, n: int) -> None:
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        client.stream(
            "POST", "/graphql", json={"query": WATCH, "variables": {"id": generation}}, headers=headers
        ) as response,
    ):
        assert response.status_code == 200, response.status_code
        async for line in response.aiter_lines():
            if line == "event: next":
                return
    raise AssertionError("the stream ended without a `next` event")


KINDS: dict[str, Callable[[str, str, str, int], Awaitable[None]]] = {
    "http": http_query,
    "ws": ws_subscription,
    "sse": sse_subscription,
}


async def run(kind: str, url: str, token: str, generation: str, count: int) -> float:
    one = KINDS[kind]

    async def lane(start: int) -> None:
        for n in range(start, count, LANES):
            await one(url, token, generation, n)

    started = time.monotonic()
    await asyncio.gather(*(lane(k) for k in range(LANES)))
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=500, help="connections of each kind")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="genhub-bench-teardown-") as tmp:
        workdir = Path(tmp)
        env = {
            "ENVIRONMENT": "development",
            "DATA_DIR": str(workdir / "data"),
            "GC_PACING": "false",
            "PYTHONPATH": str(DIAGNOSTICS),
            "GENHUB_BENCH_CYCLES": str(workdir / "cycles"),
        }
        with embedded_server(env, workdir) as (url, process):
            server = Server(url, process.pid, workdir / "cycles")
            token, generation = asyncio.run(account(url))
            for kind in KINDS:  # warm-up
                asyncio.run(run(kind, url, token, generation, 2 * LANES))
            time.sleep(0.5)
            server.garbage()
            print(f"teardown benchmark: `genhub serve` on the embedded defaults, {args.connections} connections a kind")
            print(f"{'kind':6} {'seconds':>8} {'cyclic objects':>15} {'per connection':>15}  most common")
            for kind in KINDS:
                seconds = asyncio.run(run(kind, url, token, generation, args.connections))
                time.sleep(0.5)  # the server sees the last closes
                found = server.garbage()
                per = found["unreachable"] / args.connections
                common = ", ".join(f"{name.rsplit('.', 1)[-1]} {n}" for name, n in found["types"][:5])
                print(f"{kind:6} {seconds:8.1f} {found['unreachable']:15d} {per:15.1f}  {common}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
