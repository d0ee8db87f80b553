"""docker/nginx.conf, the optional reverse proxy of docker-compose.yml.

Static checks always run: /graphql passes the WebSocket upgrade on and keeps
quiet subscriptions open. With an `nginx` binary on the machine (Debian:
nginx-light) the file is also syntax-checked by nginx itself, and a real nginx
run from it proxies a WebSocket and a plain request to a local upstream;
without the binary those two are skipped.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "docker" / "nginx.conf"


def _location(conf: str, name: str) -> str:
    match = re.search(r"location\s+" + re.escape(name) + r"\s*\{(.*?)\n    \}", conf, re.S)
    assert match, f"location {name}"
    return match.group(1)


def _seconds(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([smh]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "s": 1, "m": 60, "h": 3600}[unit]


def test_graphql_location_upgrades_websockets_and_keeps_them_open() -> None:
    conf = NGINX_CONF.read_text()
    assert re.search(r"map \$http_upgrade \$connection_upgrade \{\s*default upgrade;", conf)
    # Set at server level, inherited by every location (none sets its own headers).
    assert "proxy_http_version 1.1;" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    graphql = _location(conf, "= /graphql")
    assert "proxy_set_header" not in graphql
    read_timeout = re.search(r"proxy_read_timeout (\S+);", graphql)
    assert read_timeout and _seconds(read_timeout.group(1)) >= 600
    assert "proxy_buffering off;" in graphql


def test_metrics_are_not_public() -> None:
    assert "deny all;" in _location(NGINX_CONF.read_text(), "= /metrics")


def _nginx() -> str:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        reason = "nginx is not installed (apt-get install nginx-light)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (required under CI)")
        pytest.skip(reason)
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wrapper(tmp_path: Path, site_conf: Path) -> Path:
    """A main nginx.conf around the site file, as the nginx image's own one includes conf.d/."""
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / name).mkdir(exist_ok=True)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"""daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    include {site_conf};
}}
"""
    )
    return main


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    nginx = _nginx()
    main = _wrapper(tmp_path, NGINX_CONF)
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """nginx from docker/nginx.conf on a free port, proxying to an upstream on another.

    Only the addresses change: `listen 80` becomes the free port and `api:8000`
    (Docker's DNS name) becomes 127.0.0.1:<upstream port>."""
    nginx = _nginx()
    listen_port, upstream_port = _free_port(), _free_port()
    site = NGINX_CONF.read_text()
    site = site.replace("listen 80;", f"listen 127.0.0.1:{listen_port};").replace("listen [::]:80;", "")
    site = site.replace("http://api:8000", f"http://127.0.0.1:{upstream_port}")
    assert str(upstream_port) in site and str(listen_port) in site
    site_conf = tmp_path / "site.conf"
    site_conf.write_text(site)
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(_wrapper(tmp_path, site_conf))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", listen_port)) == 0:
                    break
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.05)
        yield listen_port, upstream_port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _through_the_proxy(listen_port: int, upstream_port: int) -> None:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.typing import Subprotocol

    seen_paths: list[str] = []

    async def echo(connection: ServerConnection) -> None:
        seen_paths.append(connection.request.path if connection.request else "")
        async for message in connection:
            await connection.send(f"echo:{message}")

    async with serve(echo, "127.0.0.1", upstream_port, subprotocols=[Subprotocol("graphql-transport-ws")]):
        url = f"ws://127.0.0.1:{listen_port}/graphql"
        async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=5) as ws:
            assert ws.subprotocol == "graphql-transport-ws"
            await ws.send('{"type":"connection_init"}')
            reply = await asyncio.wait_for(ws.recv(), timeout=5)
            assert reply == 'echo:{"type":"connection_init"}'
    assert seen_paths == ["/graphql"]


def test_websocket_subscriptions_pass_through_nginx(proxied: tuple[int, int]) -> None:
    listen_port, upstream_port = proxied
    asyncio.run(_through_the_proxy(listen_port, upstream_port))


def test_nginx_answers_its_own_health_check(proxied: tuple[int, int]) -> None:
    listen_port, _ = proxied
    response = httpx.get(f"http://127.0.0.1:{listen_port}/nginx-health", timeout=5)
    assert response.status_code == 200
    assert response.text == "ok\n"
