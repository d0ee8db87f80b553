"""Benchmark `uploadChunk`: throughput and the server's memory while a large file streams in.

Starts `genhub serve` as a subprocess (embedded SQLite; local storage, or S3 on a
moto server with `--backend s3`), uploads one file through the GraphQL multipart
request, generated piece by piece so the client never holds it, and samples the
server's /proc/<pid>/status (VmRSS every few ms, VmHWM at the end).

    .venv/bin/python bench/upload.py [--size-mb 200] [--backend local|s3]

Target: peak RSS under 100 MB above idle (the upload is streamed, never buffered).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.embedded_server import embedded_server  # noqa: E402
from bench.processes import free_port  # noqa: E402

MiB = 1024 * 1024
PIECE = 256 * 1024
REGISTER = """mutation R($e: String!, $p: String!) { register(input: {email: $e, password: $p}) {
  ... on AuthPayload { accessToken } } }"""
UPLOAD = """mutation U($file: Upload!) { uploadChunk(file: $file) {
  __typename ... on UploadChunkSuccess { chunk { id size sha256 } } ... on Error { code message } } }"""


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class RssSampler:
    """Samples VmRSS of one process in a background thread; `peak_kib` is the largest value seen."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid, self.interval = pid, interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, KeyError):
                self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS"))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class MultipartBody:
    """A GraphQL multipart request whose file part is generated on the fly (never held whole)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.boundary = uuid.uuid4().hex
        operations = json.dumps({"query": UPLOAD, "variables": {"file": None}})
        self.head = (
            "".join(
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                for name, value in (("operations", operations), ("map", json.dumps({"0": ["variables.file"]})))
            ).encode()
            + (
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="0"; filename="bench.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
        )
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.sha256 = hashlib.sha256()
        self._block = os.urandom(PIECE)

    @property
    def length(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        sent = 0
        while sent < self.size:
            # Vary each piece cheaply so the content is not one repeated block.
            piece = sent.to_bytes(8, "little") + self._block[8 : min(PIECE, self.size - sent)]
            piece = piece[: self.size - sent]
            self.sha256.update(piece)
            sent += len(piece)
            yield piece
        yield self.tail


def upload_once(url: str, token: str, size: int) -> tuple[float, dict[str, object], str]:
    body = MultipartBody(size)
    headers = {
        "Authorization": f"Bearer {token}",
        "GraphQL-Require-Preflight": "1",
        "Content-Type": f"multipart/form-data; boundary={body.boundary}",
        "Content-Length": str(body.length),
    }
    started = time.perf_counter()
    response = httpx.post(f"{url}/graphql", content=iter(body), headers=headers, timeout=600)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    result: dict[str, object] = response.json()["data"]["uploadChunk"]
    return elapsed, result, body.sha256.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--backend", choices=["local", "s3"], default="local")
    args = parser.parse_args()
    size = args.size_mb * MiB

    with tempfile.TemporaryDirectory(prefix="genhub-bench-upload-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        env = {
            "ENVIRONMENT": "development",
            "DATA_DIR": str(workdir / "data"),
            "SEED_DEMO": "false",
            "UPLOAD_MAX_BYTES": str(size + MiB),
            "CHUNK_QUOTA_BYTES": str(4 * size),
            "TMPDIR": str(workdir),  # where the multipart parser spools file parts
        }
        if args.backend == "s3":
            import logging

            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per part otherwise

            moto_port = free_port()
            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
            moto.start()
            stack.callback(moto.stop)
            env.update(
                STORAGE_BACKEND="s3",
                S3_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}",
                S3_BUCKET="bench",
                S3_ACCESS_KEY_ID="bench",
                S3_SECRET_ACCESS_KEY="bench",
                S3_ADDRESSING_STYLE="path",
                S3_CREATE_BUCKET="true",
            )
        url, process = stack.enter_context(embedded_server(env, workdir))
        registered = httpx.post(
            f"{url}/graphql",
            json={"query": REGISTER, "variables": {"e": "bench@example.com", "p": "correct horse battery"}},
        )
        token = registered.json()["data"]["register"]["accessToken"]
        # Warm up every code path once (parser, resolver, storage) so "idle" is the steady state.
        upload_once(url, token, MiB)
        time.sleep(0.5)
        idle_kib = status_kib(process.pid, "VmRSS")
        hwm_before = status_kib(process.pid, "VmHWM")
        with RssSampler(process.pid) as sampler:
            elapsed, result, digest = upload_once(url, token, size)
        hwm_after = status_kib(process.pid, "VmHWM")

    assert result.get("__typename") == "UploadChunkSuccess", result
    chunk = result["chunk"]
    assert isinstance(chunk, dict) and chunk["size"] == size and chunk["sha256"] == digest, (chunk, digest)
    # VmHWM catches a spike between two samples; if it did not move, the upload stayed below an earlier peak.
    upload_peak_kib = max(sampler.peak_kib, hwm_after) if hwm_after > hwm_before else sampler.peak_kib
    above_idle = (upload_peak_kib - idle_kib) / 1024
    print(f"backend           : {args.backend}")
    print(f"file              : {args.size_mb} MiB, sha256 verified by the server")
    print(f"upload            : {elapsed:.2f} s, {args.size_mb / elapsed:.1f} MiB/s (request start to response)")
    print(f"server idle RSS   : {idle_kib / 1024:.1f} MiB (after a 1 MiB warm-up upload)")
    print(f"peak RSS sampled  : {sampler.peak_kib / 1024:.1f} MiB")
    print(f"VmHWM             : {hwm_before / 1024:.1f} -> {hwm_after / 1024:.1f} MiB")
    print(f"peak above idle   : {above_idle:.1f} MiB")
    ok = above_idle < 100
    print(f"target <100 MiB   : {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
