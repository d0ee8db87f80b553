"""Real processes and real sockets for the subscription tests and bench/fanout.py.

- ``Proc``: ``genhub serve`` / ``genhub worker`` / ``redis-server`` subprocesses (SIGTERM, exit code, log);
- ``TransportWs`` and ``LegacyWs``: minimal graphql-transport-ws and graphql-ws clients on ``websockets``;
- ``Api``: GraphQL over HTTP (register, generate, cancel);
- ``seed_catalogue``: the simulated models, written with the app's own use cases (credits: tests.fixtures.credits).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import websockets
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from infrastructure.settings import Settings

BIN = Path(sys.executable).parent
GENHUB = str(BIN / "genhub")
JWT_SECRET = "subscription-tests-jwt-secret-0123456789abcdef"
CLOSED = {"type": "__closed__"}


class Refused(Exception):
    """The server closed the connection instead of acknowledging connection_init."""

    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"closed with {code} {reason!r}")
        self.code = code
        self.reason = reason


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**overrides: str) -> dict[str, str]:
    """The process environment minus any genhub setting of the developer's, plus ours."""
    names = set(Settings.model_fields) | {"PORT", "HOST"}
    env = {k: v for k, v in os.environ.items() if k.lower() not in names and k.upper() not in names}
    env.update(
        {
            "ENVIRONMENT": "test",
            "SEED_DEMO": "false",
            "JWT_SECRET": JWT_SECRET,
            "SIMULATED_STEPS": "3",
            "SIMULATED_STEP_SECONDS": "0.3",
            "POLL_INTERVAL_SECONDS": "0.2",
            "LOG_FORMAT": "console",
            "LOG_LEVEL": "INFO",
            "RATE_LIMIT_GENERATE": "100000",
            "RATE_LIMIT_REGISTER": "100000",
            "RATE_LIMIT_LOGIN": "100000",
            "RATE_LIMIT_IP_MULTIPLIER": "1",
        }
    )
    env.update(overrides)
    return env


@dataclass
class Proc:
    """A subprocess with its output in a log file."""

    process: subprocess.Popen[bytes]
    log_path: Path
    name: str

    @classmethod
    def start(cls, args: list[str], env: Mapping[str, str], cwd: Path, name: str) -> Proc:
        log_path = cwd / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(args, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT)
        return cls(process, log_path, name)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_kib(self) -> int:
        """Resident set size from /proc (Linux)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait for the exit code (SIGKILL after ``timeout``)."""
        if self.alive():
            self.process.send_signal(sig)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.alive():
            self.process.kill()
        return self.process.wait()


@dataclass
class Server:
    proc: Proc
    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


async def start_server(env: Mapping[str, str], cwd: Path, name: str = "serve", timeout: float = 90.0) -> Server:
    port = free_port()
    proc = Proc.start([GENHUB, "serve", "--host", "127.0.0.1", "--port", str(port)], env, cwd, f"{name}-{port}")
    server = Server(proc, port)
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            if not proc.alive():
                raise RuntimeError(f"genhub serve exited with {proc.process.returncode}:\n{proc.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{server.http_url}/health", timeout=1)).status_code == 200:
                    return server
            if time.monotonic() > deadline:
                await proc.stop()
                raise RuntimeError(f"genhub serve did not answer within {timeout}s:\n{proc.output()}")
            await asyncio.sleep(0.1)


def start_worker(env: Mapping[str, str], cwd: Path, name: str = "worker") -> Proc:
    return Proc.start([GENHUB, "worker", "--workers", "1"], env, cwd, name)


async def start_redis(cwd: Path, port: int | None = None) -> tuple[Proc, int]:
    """A private redis-server without persistence, answering PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server")
    port = port or free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = Proc.start(args, os.environ, cwd, f"redis-{port}")
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    try:
        for _ in range(100):
            with contextlib.suppress(Exception):
                if await client.ping():
                    return proc, port
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    raise RuntimeError(f"redis-server did not start:\n{proc.output()}")


async def wait_for_numsub(redis_url: str, channel: str, expected: int, timeout: float = 10.0) -> None:
    """Until ``PUBSUB NUMSUB channel`` == expected (a SUBSCRIBE has landed, or been released)."""
    client = Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            [(_, count)] = await client.pubsub_numsub(channel)
            if count == expected or time.monotonic() > deadline:
                assert count == expected, f"PUBSUB NUMSUB {channel} = {count}, expected {expected}"
                return
            await asyncio.sleep(0.02)
    finally:
        await client.aclose()


async def wait_for_line(proc: Proc, text: str, timeout: float) -> None:
    """Until ``proc`` has logged ``text``; fails when it exits first or the time runs out."""
    deadline = time.monotonic() + timeout
    while text not in proc.output():
        assert proc.alive(), proc.output()
        assert time.monotonic() < deadline, f"{proc.name} never logged {text!r}:\n{proc.output()}"
        await asyncio.sleep(0.1)


async def empty_stores(postgres_dsn: str, redis_url: str, tables: str) -> None:
    """TRUNCATE ``tables`` (a comma-separated list) CASCADE and FLUSHDB: a module's stack starts from nothing."""
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(f"TRUNCATE {tables} CASCADE")
    finally:
        await conn.close()
    flush = Redis.from_url(redis_url)
    await flush.flushdb()
    await flush.aclose()


@contextlib.asynccontextmanager
async def running_stack(
    env: Mapping[str, str], cwd: Path, names: tuple[str, ...], *, timeout: float = 90.0
) -> AsyncIterator[tuple[list[Server], Proc, Proc]]:
    """A worker, a scheduler and one ``genhub serve`` per name (started together); all stopped on the way out."""
    worker = start_worker(env, cwd)
    scheduler = Proc.start([GENHUB, "scheduler"], env, cwd, "scheduler")
    servers: list[Server] = []
    try:
        servers = list(await asyncio.gather(*(start_server(env, cwd, name, timeout=timeout) for name in names)))
        await wait_for_line(worker, "Listening started", 30)
        yield servers, worker, scheduler
    finally:
        for proc in [*(s.proc for s in servers), worker, scheduler]:
            await proc.stop()


# ---------------------------------------------------------------- GraphQL over HTTP


REGISTER = """mutation ($email: String!, $password: String!) {
  register(input: {email: $email, password: $password}) {
    __typename ... on AuthPayload { accessToken user { id } } ... on Error { code message } } }"""
GENERATE = """mutation ($model: ID!, $prompt: String!, $board: ID) {
  generate(input: {modelId: $model, prompt: $prompt, boardId: $board}) {
    __typename ... on GenerateSuccess { generation { id status } } ... on Error { code message } } }"""
CANCEL = """mutation ($id: ID!) { cancelGeneration(id: $id) {
  __typename ... on CancelSuccess { generation { id status } } ... on Error { code message } } }"""
MODELS = "{ models { id slug costCredits } }"


@dataclass
class Account:
    user_id: uuid.UUID
    email: str
    token: str


class Api:
    """GraphQL over HTTP against one server."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=15)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def execute(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def register(self, prefix: str = "sub") -> Account:
        email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
        data = await self.execute(REGISTER, {"email": email, "password": "correct horse battery"})
        payload = data["register"]
        assert payload["__typename"] == "AuthPayload", payload
        return Account(uuid.UUID(payload["user"]["id"]), email, payload["accessToken"])

    async def model_id(self, token: str, slug: str = "sim-image") -> str:
        models = (await self.execute(MODELS, token=token))["models"]
        return next(m["id"] for m in models if m["slug"] == slug)

    async def generate(self, token: str, model_id: str, prompt: str = "a red fox", board: str | None = None) -> str:
        data = await self.execute(GENERATE, {"model": model_id, "prompt": prompt, "board": board}, token=token)
        result = data["generate"]
        assert result["__typename"] == "GenerateSuccess", result
        return str(result["generation"]["id"])

    async def cancel(self, token: str, generation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = (await self.execute(CANCEL, {"id": generation_id}, token=token))["cancelGeneration"]
        return result


def seed_settings(database_url: str, redis_url: str | None, tmp: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="test",
        database_url=database_url,
        redis_url=redis_url or "",
        data_dir=tmp / "seed-data",
        local_storage_path=tmp / "chunks",
        jwt_secret=JWT_SECRET,
        seed_demo=False,
    )


async def seed_catalogue(settings: Settings) -> None:
    """The simulated models (idempotent), written through the app's own seeding use case."""
    from infrastructure.bootstrap import open_services

    async with open_services(settings) as services:
        await services.accounts.seed_demo("seed@genhub.local", "seed-password-123", 1)


@contextlib.asynccontextmanager
async def app_container(settings: Settings) -> AsyncIterator[Any]:
    from infrastructure.bootstrap import open_services

    async with open_services(settings) as services:
        yield services.adapters


# ---------------------------------------------------------------- WebSocket clients


class _Client:
    """Routes incoming messages by operation id; answers keep-alive pings."""

    subprotocol = ""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.by_id: defaultdict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self.control: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.pings = 0
        self._ids = 0
        self._reader = asyncio.create_task(self._read())

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self.ws.close_reason

    def next_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if await self._keepalive(message):
                    continue
                if "id" in message:
                    self.by_id[str(message["id"])].put_nowait(message)
                else:
                    self.control.put_nowait(message)
        except ConnectionClosed:
            pass
        finally:
            for queue in [*self.by_id.values(), self.control]:
                queue.put_nowait(CLOSED)

    async def _keepalive(self, message: dict[str, Any]) -> bool:
        return False

    async def receive(self, op_id: str, timeout: float = 10.0) -> dict[str, Any]:
        if self._reader.done() and self.by_id[op_id].empty():
            return CLOSED
        return await asyncio.wait_for(self.by_id[op_id].get(), timeout)

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._reader, 5)


class TransportWs(_Client):
    """graphql-transport-ws (the graphql-ws library's protocol)."""

    subprotocol = "graphql-transport-ws"

    @classmethod
    async def connect(
        cls, url: str, payload: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> TransportWs:
        """Connected and acknowledged; raises ConnectionClosed (with the close code) when refused."""
        ws = await websockets.connect(url, subprotocols=[cls.subprotocol], additional_headers=headers, open_timeout=10)  # type: ignore[list-item]
        client = cls(ws)
        await client.send({"type": "connection_init", "payload": payload or {}})
        ack = await asyncio.wait_for(client.control.get(), 10)
        if ack is CLOSED:
            raise Refused(ws.close_code, ws.close_reason)
        assert ack["type"] == "connection_ack", ack
        return client

    async def _keepalive(self, message: dict[str, Any]) -> bool:
        if message.get("type") == "ping":
            self.pings += 1
            with contextlib.suppress(ConnectionClosed):
                await self.send({"type": "pong"})
            return True
        return message.get("type") == "pong"

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op_id = self.next_id()
        await self.send({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})
        return op_id

    async def complete(self, op_id: str) -> None:
        await self.send({"id": op_id, "type": "complete"})

    async def next_data(self, op_id: str, timeout: float = 10.0) -> dict[str, Any]:
        message = await self.receive(op_id, timeout)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data


class LegacyWs(_Client):
    """Legacy graphql-ws (subscriptions-transport-ws)."""

    subprotocol = "graphql-ws"

    @classmethod
    async def connect(
        cls, url: str, payload: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> LegacyWs:
        ws = await websockets.connect(url, subprotocols=[cls.subprotocol], additional_headers=headers, open_timeout=10)  # type: ignore[list-item]
        client = cls(ws)
        await client.send({"type": "connection_init", "payload": payload or {}})
        ack = await asyncio.wait_for(client.control.get(), 10)
        if ack is CLOSED or ack["type"] == "connection_error":
            with contextlib.suppress(Exception):
                await client.wait_closed(5)
            raise Refused(ws.close_code, ws.close_reason)
        assert ack["type"] == "connection_ack", ack
        return client

    async def _keepalive(self, message: dict[str, Any]) -> bool:
        if message.get("type") == "ka":
            self.pings += 1
            return True
        return False

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op_id = self.next_id()
        await self.send({"id": op_id, "type": "start", "payload": {"query": query, "variables": variables or {}}})
        return op_id

    async def next_data(self, op_id: str, timeout: float = 10.0) -> dict[str, Any]:
        message = await self.receive(op_id, timeout)
        assert message["type"] == "data", message
        assert not message["payload"].get("errors"), message
        data: dict[str, Any] = message["payload"]["data"]
        return data


@dataclass
class Recorder:
    """Collects a subscription's data messages in the background."""

    client: _Client
    op_id: str
    items: list[dict[str, Any]] = field(default_factory=list)
    ended: dict[str, Any] | None = None

    async def run(self, timeout: float) -> None:
        while True:
            message = await self.client.receive(self.op_id, timeout)
            if message.get("type") in ("next", "data"):
                self.items.append(message["payload"])
                continue
            self.ended = message
            return
