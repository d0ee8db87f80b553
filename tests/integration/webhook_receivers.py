"""Local HTTP receivers for webhook tests: real sockets in the test's loop, each with a scripted answer.

A receiver counts the connections it accepted and records every request it read, so a test
can prove that nothing reached it. Answers: a status with a body, a hang, an endless or a
trickling body; `tls_receiver` serves HTTPS with a certificate of a test authority.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True, slots=True)
class Received:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names (a repeated header keeps its last value)
    raw_headers: list[tuple[str, str]]
    body: bytes


Answer = Callable[[Received, asyncio.StreamWriter], Awaitable[None]]


@dataclass(slots=True)
class Receiver:
    host: str
    port: int
    connections: int = 0
    requests: list[Received] = field(default_factory=list)
    open_now: int = 0
    most_open: int = 0
    server_names: list[str | None] = field(default_factory=list)

    def url(self, path: str = "/hook", *, host: str | None = None, scheme: str = "http") -> str:
        name = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{scheme}://{name}:{self.port}{path}"


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    raw = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if line]
    pairs = [(name, value) for name, value in raw]
    headers = {name.lower(): value for name, value in pairs}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(method, target, headers, pairs, body)


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
    async def reply(_request: Received, writer: asyncio.StreamWriter) -> None:
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n"
        writer.write(head.encode() + body)
        await writer.drain()

    return reply


def hang(release: asyncio.Event) -> Answer:
    async def reply(_request: Received, _writer: asyncio.StreamWriter) -> None:
        await release.wait()

    return reply


def endless_body(chunk: bytes = b"x" * 16384) -> Answer:
    """200 with a chunked body that never ends (until the client goes away)."""

    async def reply(_request: Received, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        while True:
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()

    return reply


def trickle(interval: float) -> Answer:
    """200 announcing a small body, then one byte per interval."""

    async def reply(_request: Received, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
        while True:
            writer.write(b".")
            await writer.drain()
            await asyncio.sleep(interval)

    return reply


@contextlib.asynccontextmanager
async def receiver(
    reply: Answer, *, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Receiver]:
    state = Receiver(host=host, port=0)
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        state.open_now += 1
        state.most_open = max(state.most_open, state.open_now)
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)  # type: ignore[arg-type]
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is not None:
            state.server_names.append(getattr(ssl_object, "genhub_server_name", None))
        try:
            request = await _read_request(reader)
            if request is not None:
                state.requests.append(request)
                await reply(request, writer)
        except (ConnectionError, asyncio.CancelledError, ssl.SSLError):
            pass
        finally:
            state.open_now -= 1
            handlers.discard(task)  # type: ignore[arg-type]
            writer.close()

    server = await asyncio.start_server(serve, host, 0, ssl=ssl_context)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def counting_listener(host: str = "127.0.0.1") -> AsyncIterator[Receiver]:
    """A receiver that answers 200: for tests proving that nothing connects to it."""
    async with receiver(answer(200), host=host) as state:
        yield state


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class TestAuthority:
    """A certificate authority made for one test run, and what a client needs to trust it."""

    ca_pem: bytes
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        return context

    def server_context(self, name: str, directory: Path) -> ssl.SSLContext:
        """A server certificate for `name` (DNS SAN) signed by this authority; records the SNI it is asked for."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_file = directory / f"{name}.pem"
        key_file = directory / f"{name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)

        def remember(ssl_object: ssl.SSLObject, server_name: str | None, _context: ssl.SSLContext) -> None:
            ssl_object.genhub_server_name = server_name  # type: ignore[attr-defined]

        context.sni_callback = remember  # type: ignore[assignment]
        return context


def make_authority() -> TestAuthority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "genhub webhook test authority")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return TestAuthority(ca_pem=cert.public_bytes(serialization.Encoding.PEM), key=key, cert=cert)
