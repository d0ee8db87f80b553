"""Structured logs: one line per GraphQL operation; masked errors logged with the client-visible request id."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.app import SettingsFactory, register_user, running_app

ME = "query Me { me { id } }"
MODELS = "query Models { models { id } }"


async def test_each_operation_logs_one_line(make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture) -> None:
    async with running_app(make_settings()) as client:
        session = await register_user(client, "logs@example.com")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="genhub.graphql.operation"):
            response = await client.http.post(
                "/graphql",
                json={"query": ME},
                headers={"Authorization": f"Bearer {session['accessToken']}", "X-Request-ID": "req-abc-123"},
            )
    assert response.headers["x-request-id"] == "req-abc-123"
    lines = [r for r in caplog.records if r.name == "genhub.graphql.operation"]
    assert len(lines) == 1
    line: Any = lines[0]
    assert line.request_id == "req-abc-123"
    assert line.user_id == session["user"]["id"]
    assert line.operation_name == "Me"
    assert line.outcome == "ok"
    assert isinstance(line.duration_ms, float) and line.duration_ms > 0


@pytest.mark.postgres
@pytest.mark.redis
async def test_production_masks_unexpected_errors_and_logs_them_with_the_request_id(
    make_settings: SettingsFactory,
    clean_postgres: str,
    clean_redis: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(
        environment="production",
        database_url=clean_postgres,
        redis_url=clean_redis,
        jwt_secret="a-production-secret-that-is-long-enough-0123",
        local_storage_path=tmp_path / "chunks",
        smtp_host="127.0.0.1",
        mail_from="noreply@genhub.example",
    )
    async with running_app(settings) as client:
        # given a resolver that fails unexpectedly, with a secret in the exception text
        async def broken() -> list[Any]:
            raise RuntimeError("connection to 10.0.0.7 refused, password=hunter2")

        client.container.catalogue.models = broken
        with caplog.at_level(logging.INFO):
            response = await client.http.post("/graphql", json={"query": MODELS})
    body = response.json()
    request_id = response.headers["x-request-id"]
    # then the client sees a masked error carrying the request id, and no detail
    error = body["errors"][0]
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert "hunter2" not in response.text and "Traceback" not in response.text
    # and the log has the full story under the same request id, exactly once
    logged = [r for r in caplog.records if r.name == "genhub.graphql" and r.levelno == logging.ERROR]
    assert len(logged) == 1
    assert getattr(logged[0], "request_id", None) == request_id
    assert logged[0].exc_info is not None and "hunter2" in str(logged[0].exc_info[1])
    operation: Any = next(r for r in caplog.records if r.name == "genhub.graphql.operation")
    assert operation.request_id == request_id
    assert operation.outcome == "error"
    assert operation.error_codes == ["INTERNAL_SERVER_ERROR"]
