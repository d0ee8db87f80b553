"""AutoPipeline against a real Redis: one write per loop iteration, order kept, errors per command, lost connections."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infrastructure.redis_pipelining import AutoPipeline
from tests.fixtures.services import unavailable
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.redis


@pytest.fixture
async def redis(clean_redis: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(clean_redis)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def pipeline(redis: Redis) -> AsyncIterator[AutoPipeline]:
    auto = AutoPipeline(redis)
    try:
        yield auto
    finally:
        await auto.aclose()


async def closed_on_the_server(redis: Redis, client_id: int) -> bool:
    """Whether Redis no longer lists that client (it notices a close on its own time: up to 1 s)."""
    for _ in range(50):
        if f"id={client_id} " not in (await redis.execute_command("CLIENT", "LIST")).decode():
            return True
        await asyncio.sleep(0.02)
    return False


@contextlib.asynccontextmanager
async def pipeline_to(client: Redis, **options: Any) -> AsyncIterator[AutoPipeline]:
    """An AutoPipeline with `client`'s connection settings; both are closed afterwards."""
    auto = AutoPipeline(client, **options)
    try:
        yield auto
    finally:
        await auto.aclose()
        await client.aclose()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens here once closed


async def test_commands_of_one_iteration_share_one_write_and_keep_their_order(
    redis: Redis, pipeline: AutoPipeline
) -> None:
    # given 100 callers issuing a command at the same moment
    # when they all wait for their replies
    replies = await asyncio.gather(*(pipeline.call("RPUSH", "order", i) for i in range(100)))
    # then one write carried them, in the order they were issued
    assert pipeline.writes == 1
    assert replies == list(range(1, 101))
    assert [int(v) for v in await redis.lrange("order", 0, -1)] == list(range(100))


async def test_commands_of_successive_iterations_keep_their_order_on_the_wire(
    redis: Redis, pipeline: AutoPipeline
) -> None:
    # given an open connection and commands issued over ten loop iterations, none waiting for an earlier reply
    await pipeline.call("PING")
    futures = []
    for i in range(10):
        futures += [pipeline.submit("RPUSH", "order", f"{i}-{j}") for j in range(3)]
        await asyncio.sleep(0)
    await asyncio.gather(*futures)
    # then Redis ran them in the order they were issued (one connection, pipelined)
    assert [v.decode() for v in await redis.lrange("order", 0, -1)] == [f"{i}-{j}" for i in range(10) for j in range(3)]
    assert pipeline.writes == 1 + 10  # the PING, then one write per iteration


async def test_a_lone_command_goes_at_once_and_fails_alone(pipeline: AutoPipeline) -> None:
    assert await asyncio.wait_for(pipeline.call("SET", "k", "v"), timeout=1) == b"OK"  # Redis's reply, no callbacks
    assert await asyncio.wait_for(pipeline.call("GET", "k"), timeout=1) == b"v"
    with pytest.raises(ResponseError):
        await pipeline.call("INCR", "k")  # its own error; the pipeline goes on
    assert await pipeline.call("EXISTS", "k") == 1
    assert pipeline.writes == 4


async def test_a_failing_command_fails_only_its_caller(redis: Redis, pipeline: AutoPipeline) -> None:
    await redis.set("text", "not a number")

    results = await asyncio.gather(
        pipeline.call("INCR", "counter"),
        pipeline.call("INCR", "text"),
        pipeline.call("INCR", "counter"),
        return_exceptions=True,
    )

    assert results[0] == 1 and results[2] == 2
    assert isinstance(results[1], ResponseError)


async def test_error_replies_map_to_redis_py_exception_classes(pipeline: AutoPipeline) -> None:
    with pytest.raises(NoScriptError):
        await pipeline.call("EVALSHA", "0" * 40, 0)


async def test_submitted_commands_can_be_awaited_together(pipeline: AutoPipeline) -> None:
    first, second = pipeline.submit("SET", "a", "1"), pipeline.submit("GET", "a")

    assert (await first, await second) == (b"OK", b"1")
    assert pipeline.writes == 1


async def test_an_argument_redis_cannot_take_fails_its_batch_only(pipeline: AutoPipeline) -> None:
    with pytest.raises(TypeError):
        await pipeline.call("SET", "k", object())

    assert await pipeline.call("SET", "k", "v") == b"OK"


async def test_an_unreachable_server_fails_every_caller_then_the_next_call_tries_again() -> None:
    async with pipeline_to(Redis(host="127.0.0.1", port=closed_port()), connect_timeout=1) as auto:
        results = await asyncio.gather(*(auto.call("PING") for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, RedisConnectionError) for r in results)
        with pytest.raises(RedisConnectionError):
            await auto.call("PING")  # a new attempt, not a remembered failure


async def blocked_in(redis: Redis, client_id: int, command: str) -> bool:
    """Whether the server lists that client as running `command` (a blocking one: waiting in it)."""
    listing = (await redis.execute_command("CLIENT", "LIST", "ID", client_id)).decode()
    return f" cmd={command} " in listing


async def test_a_lost_connection_fails_the_commands_on_it_and_the_next_ones_reconnect(
    redis: Redis, pipeline: AutoPipeline
) -> None:
    # given a pipeline with its connection open and a command waiting on it
    own_id = await pipeline.call("CLIENT", "ID")
    waiting = pipeline.submit("BLPOP", "nothing-comes", 5)  # holds the connection's queue (tests only)
    await eventually(lambda: blocked_in(redis, own_id, "blpop"), what="the BLPOP to block on the server")
    # when the server drops that connection
    await redis.client_kill_filter(_id=own_id)
    # then the waiting command fails with a connection error, and the next command reconnects
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(waiting, timeout=2)
    assert await asyncio.wait_for(pipeline.call("PING"), timeout=2) == b"PONG"
    assert await pipeline.call("CLIENT", "ID") != own_id


async def test_a_connection_left_idle_is_replaced_before_its_next_use(redis: Redis) -> None:
    auto = AutoPipeline(redis, idle_reconnect=0.2)
    try:
        first = await auto.call("CLIENT", "ID")
        assert await auto.call("CLIENT", "ID") == first  # in use: kept
        await asyncio.sleep(0.3)  # real idleness is the behaviour under test (the pipeline reads the loop's clock)
        second = await auto.call("CLIENT", "ID")
        # a new connection, and the old one was closed rather than left open
        assert second != first
        assert await closed_on_the_server(redis, first)
        assert f"id={second} " in (await redis.execute_command("CLIENT", "LIST")).decode()
    finally:
        await auto.aclose()


async def test_a_server_that_stops_answering_times_out_every_waiting_command() -> None:
    # given a TCP server that accepts and never answers (Redis hung, a half-open connection)
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with pipeline_to(Redis(host="127.0.0.1", port=port), reply_timeout=0.2) as auto:
            # when commands wait for replies that never come
            results = await asyncio.wait_for(
                asyncio.gather(*(auto.call("PING") for _ in range(3)), return_exceptions=True), timeout=3
            )
        # then each fails with a timeout after about reply_timeout
        assert all(isinstance(r, RedisTimeoutError) for r in results)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_cancelled_caller_leaves_the_others_their_replies(redis: Redis, pipeline: AutoPipeline) -> None:
    first = asyncio.ensure_future(pipeline.call("INCR", "n"))
    second = asyncio.ensure_future(pipeline.call("INCR", "n"))
    await asyncio.sleep(0)
    first.cancel()

    assert await second == 2  # the cancelled caller's command still ran: its reply is simply dropped
    await pipeline.drain()
    assert int(await redis.get("n")) == 2


async def test_the_database_of_the_client_is_selected(clean_redis: str) -> None:
    # given a client on another database than 0
    other_db = f"{clean_redis.rsplit('/', 1)[0]}/9"
    key = f"selected-{uuid.uuid4().hex}"
    other = Redis.from_url(other_db)
    async with pipeline_to(other) as auto:
        try:
            await auto.call("SET", key, "here")
            assert await other.get(key) == b"here"
            assert await auto.call("CLIENT", "INFO") and b"db=9" in await auto.call("CLIENT", "INFO")
        finally:
            await other.delete(key)


@pytest.fixture
def acl_user(clean_redis: str) -> Iterator[tuple[str, str]]:
    """A Redis ACL user with a password, deleted afterwards."""
    import redis as sync_redis

    admin = sync_redis.Redis.from_url(clean_redis)
    name, password = f"genhub-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin.acl_setuser(name, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all"])
    try:
        yield name, password
    finally:
        admin.acl_deluser(name)
        admin.close()


async def test_the_user_and_password_of_the_client_authenticate(clean_redis: str, acl_user: tuple[str, str]) -> None:
    name, password = acl_user
    host_and_db = clean_redis.split("://", 1)[1]
    async with (
        pipeline_to(Redis.from_url(f"redis://{name}:{password}@{host_and_db}")) as with_good,
        pipeline_to(Redis.from_url(f"redis://{name}:wrong@{host_and_db}")) as with_bad,
    ):
        assert await with_good.call("ACL", "WHOAMI") == name.encode()
        with pytest.raises(AuthenticationError):
            await with_bad.call("PING")


async def test_aclose_waits_for_replies_then_closes_and_the_pipeline_can_be_used_again(
    redis: Redis, pipeline: AutoPipeline
) -> None:
    own_id = await pipeline.call("CLIENT", "ID")
    late = pipeline.submit("INCR", "n")

    await pipeline.aclose()

    assert late.done() and late.result() == 1
    assert await closed_on_the_server(redis, own_id)
    assert await pipeline.call("INCR", "n") == 2


# ------------------------------------------------------------------ TLS (rediss://)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificate_authority(directory: Path, name: str) -> Path:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=directory)  # fmt: skip
    return directory / f"{name}.crt"


@dataclass
class TlsRedis:
    url: str
    ca: Path  # the authority that signed the server's certificate
    stranger: Path  # an authority that did not


@pytest.fixture
async def tls_redis(tmp_path: Path) -> AsyncIterator[TlsRedis]:
    """A private redis-server speaking only TLS, its certificate for 127.0.0.1 signed by a test CA."""
    for binary in ("redis-server", "openssl"):
        if shutil.which(binary) is None:
            unavailable(binary, f"install {binary} (Debian: redis-server, openssl)", FileNotFoundError(binary))
    ca, stranger = _certificate_authority(tmp_path, "ca"), _certificate_authority(tmp_path, "stranger")
    (tmp_path / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr", cwd=tmp_path)  # fmt: skip
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "1", "-extfile", "san.cnf", "-out", "server.crt", cwd=tmp_path)  # fmt: skip
    port = closed_port()
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt",
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"rediss://127.0.0.1:{port}/0"
    probe = Redis.from_url(url, ssl_ca_certs=str(ca), socket_connect_timeout=0.5)
    try:
        for _ in range(100):
            try:
                await probe.ping()
                break
            except RedisConnectionError:
                assert server.poll() is None, "redis-server with TLS did not start"
                await asyncio.sleep(0.05)
        else:
            pytest.fail("redis-server with TLS did not answer within 5 s")
        yield TlsRedis(url, ca, stranger)
    finally:
        await probe.aclose()
        server.kill()
        server.wait(timeout=10)


async def test_a_tls_client_gets_a_tls_connection_verified_against_its_authority(tls_redis: TlsRedis) -> None:
    async with pipeline_to(Redis.from_url(tls_redis.url, ssl_ca_certs=str(tls_redis.ca))) as auto:
        assert await auto.call("SET", "over-tls", "yes") == b"OK"
        assert await auto.call("GET", "over-tls") == b"yes"


async def test_a_server_certificate_from_another_authority_is_refused(tls_redis: TlsRedis) -> None:
    suspicious = Redis.from_url(tls_redis.url, ssl_ca_certs=str(tls_redis.stranger))
    async with pipeline_to(suspicious, connect_timeout=5) as auto:
        with pytest.raises(RedisConnectionError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await auto.call("PING")
