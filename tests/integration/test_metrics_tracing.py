"""Optional OpenTelemetry tracing: off without configuration, spans for GraphQL, SQL, Redis and httpx when on.

The enabled case runs in a subprocess: a tracer provider can be set once per process,
and instrumentation must not leak into the other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graph.tracing import operation_tracing
from infrastructure.settings import Settings
from infrastructure.tracing import redact_literals, setup_tracing, traces_url

SCRIPT = r"""
import asyncio, json, sys
from pathlib import Path
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from infrastructure.settings import Settings
from infrastructure.tracing import setup_tracing
from tests.fixtures.app import running_app, register_user

async def main() -> None:
    tmp = Path(sys.argv[1])
    settings = Settings(_env_file=None, environment="test", data_dir=tmp / "data", local_storage_path=tmp / "chunks",
                        seed_demo=False, redis_url=sys.argv[2], otel_exporter_otlp_endpoint="http://127.0.0.1:4318")
    exporter = InMemorySpanExporter()
    assert setup_tracing(settings, exporter=exporter)
    async with running_app(settings) as client:
        await register_user(client, "traced@example.com", "secret password 123")
        await client.execute('mutation InlineLogin { login(input: {email: "traced@example.com", '
                             'password: "secret password 123"}) { __typename } }')
        await client.container.redis.ping()
        try:
            await client.container.http.get("http://127.0.0.1:9/provider")
        except Exception:
            pass
    spans = [{"name": s.name, "attributes": {k: str(v) for k, v in (s.attributes or {}).items()}}
             for s in exporter.get_finished_spans()]
    print(json.dumps(spans))

asyncio.run(main())
"""


def off(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, environment="test", data_dir=tmp_path)  # type: ignore[call-arg]


def test_tracing_is_off_without_an_endpoint(tmp_path: Path) -> None:
    assert setup_tracing(off(tmp_path)) is False
    assert operation_tracing(off(tmp_path)) is None


def test_an_endpoint_without_the_packages_only_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = off(tmp_path).model_copy(update={"otel_exporter_otlp_endpoint": "http://collector:4318"})
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    assert setup_tracing(settings) is False
    assert "opentelemetry-sdk is not installed" in caplog.text


def test_helpers() -> None:
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"
    query = 'mutation { login(input: {email: "a@b.c", password: "hunter2 \\" x"}) { __typename } }'
    assert redact_literals(query) == 'mutation { login(input: {email: "***", password: "***"}) { __typename } }'


@pytest.mark.redis
def test_spans_for_graphql_sql_redis_and_httpx(tmp_path: Path, clean_redis: str) -> None:
    pytest.importorskip("opentelemetry.sdk.trace", reason="the optional `otel` extra is not installed")
    pytest.importorskip("opentelemetry.instrumentation.sqlalchemy", reason="the optional `otel` extra is not installed")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), clean_redis],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    spans = json.loads(done.stdout.strip().splitlines()[-1])
    names = [s["name"] for s in spans]
    # GraphQL operation and resolver spans, with no secret on them
    assert "GraphQL Query: Register" in names
    assert "GraphQL Resolving: register" in names
    inline = next(s for s in spans if s["name"] == "GraphQL Query: InlineLogin")
    assert 'password: "***"' in inline["attributes"]["query"]
    assert "secret password" not in json.dumps(spans)
    # SQL, Redis and the outgoing HTTP call
    assert any(
        s["attributes"].get("db.system") == "sqlite" or s["attributes"].get("db.system.name") == "sqlite" for s in spans
    ), names
    assert any(
        s["attributes"].get("db.system") == "redis" or s["attributes"].get("db.system.name") == "redis" for s in spans
    ), names
    assert any(s["name"].startswith("GET") for s in spans), names
