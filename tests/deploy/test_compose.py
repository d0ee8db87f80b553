"""docker-compose.yml, checked without a Docker engine.

1. Validated against the official Compose Specification JSON schema, as vendored
   by the `check-jsonschema` package (`--builtin-schema vendor.compose-spec`).
   Without that package the test is skipped, unless CI=true, where it fails.
2. The structure the deployment relies on, asserted directly: health checks,
   start order, one scheduler, Redis AOF, MinIO bucket creation, wiring of the
   app containers to the bundled services, the optional nginx profile.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
IN_CI = os.environ.get("CI", "").lower() == "true"

APP_SERVICES = ("api", "worker", "scheduler")
ONE_SHOT_SERVICES = ("migrate", "minio-init")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def _check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _require_check_jsonschema() -> None:
    if importlib.util.find_spec("check_jsonschema") is None:
        _unavailable("check-jsonschema is not installed (it vendors the Compose Specification schema)")


def test_compose_file_matches_the_compose_specification_schema() -> None:
    _require_check_jsonschema()
    result = _check_compose_schema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_an_invalid_compose_file(tmp_path: Path) -> None:
    """Guards the check above against passing vacuously."""
    _require_check_jsonschema()
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        "services:\n"
        "  api:\n"
        "    image: genhub:local\n"
        "    depends_on:\n"
        "      postgres:\n"
        "        condition: service_whenever\n"
        "  postgres:\n"
        "    image: postgres:16-alpine\n"
    )
    result = _check_compose_schema(broken)
    assert result.returncode != 0, result.stdout


def test_expected_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= {*APP_SERVICES, "postgres", "redis", "minio", "minio-init", "nginx"}


def test_every_long_running_service_has_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            assert service.get("restart") == "no", f"{name} is a one-shot service"
            continue
        healthcheck = service.get("healthcheck")
        assert healthcheck, f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"
        assert healthcheck.get("test"), f"{name} healthcheck has no test"


def test_dependencies_wait_for_health_or_completion(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on must use the long syntax with conditions"
        for dependency, spec in depends_on.items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            expected = "service_completed_successfully" if dependency in ONE_SHOT_SERVICES else "service_healthy"
            assert spec.get("condition") == expected, f"{name} -> {dependency}: {spec}"


def test_app_services_start_after_their_backing_services_and_migrations(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in APP_SERVICES:
        assert set(services[name]["depends_on"]) >= {"postgres", "redis", "minio", "minio-init", "migrate"}
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_app_services_run_the_image_commands(services: dict[str, dict[str, Any]]) -> None:
    for name, command in (("api", "serve"), ("worker", "worker"), ("scheduler", "scheduler")):
        assert services[name]["command"] == [command]
        assert services[name]["build"]["dockerfile"] == "Dockerfile"


def test_exactly_one_scheduler(services: dict[str, dict[str, Any]]) -> None:
    scheduler = services["scheduler"]
    assert scheduler.get("deploy", {}).get("replicas", 1) == 1
    assert "scale" not in scheduler or scheduler["scale"] == 1


def test_scalable_services_have_no_fixed_container_name(services: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "worker"):
        assert "container_name" not in services[name], f"{name} could not be scaled with a container_name"


def test_redis_appends_to_its_aof_on_a_volume(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    command = redis["command"]
    joined = " ".join(command) if isinstance(command, list) else command
    assert "--appendonly yes" in joined
    assert any(str(volume).endswith(":/data") for volume in redis["volumes"])
    assert "redis:7" in redis["image"]


def test_postgres_is_16_and_checked_with_pg_isready(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert "postgres:16" in postgres["image"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(str(volume).endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])


def test_minio_init_creates_the_bucket(services: dict[str, dict[str, Any]]) -> None:
    init = services["minio-init"]
    assert "minio/mc" in init["image"]
    script = " ".join(init["command"])
    assert "mc mb --ignore-existing" in script
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    assert set(compose["volumes"]) >= {"postgres-data", "redis-data", "minio-data"}


def test_app_containers_are_wired_to_the_bundled_services(services: dict[str, dict[str, Any]]) -> None:
    for name in (*APP_SERVICES, "migrate"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["STORAGE_BACKEND"] == "s3"
        assert env["S3_ENDPOINT_URL"] == "http://minio:9000"
        assert env["S3_ADDRESSING_STYLE"] == "path"
        # Presigned URLs must be signed for an address browsers can reach.
        assert "minio" not in env["S3_PUBLIC_ENDPOINT_URL"]
        assert env["ENVIRONMENT"] == "${ENVIRONMENT:-production}"


def test_every_app_container_requires_the_same_jwt_secret(services: dict[str, dict[str, Any]]) -> None:
    # the worker derives the API's reset links again: one secret for all, never one drawn per container
    secrets = {services[name]["environment"]["JWT_SECRET"] for name in (*APP_SERVICES, "migrate")}
    assert len(secrets) == 1
    assert secrets.pop().startswith("${JWT_SECRET:?")


def test_app_containers_read_an_optional_env_file(services: dict[str, dict[str, Any]]) -> None:
    for name in (*APP_SERVICES, "migrate"):
        assert {"path": ".env", "required": False} in services[name]["env_file"]


def test_api_publishes_port_and_listens_on_8000(services: dict[str, dict[str, Any]]) -> None:
    api = services["api"]
    assert api["environment"]["PORT"] == "8000"
    assert any("${PORT" in str(port) and str(port).endswith(":8000") for port in api["ports"])
    assert "/ready" in " ".join(api["healthcheck"]["test"])


def test_nginx_is_an_optional_proxy_profile_with_the_repo_config(services: dict[str, dict[str, Any]]) -> None:
    nginx = services["nginx"]
    assert nginx["profiles"] == ["proxy"]
    assert "./docker/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    assert nginx["depends_on"]["api"]["condition"] == "service_healthy"
    for name, service in services.items():
        if name != "nginx":
            assert "profiles" not in service, f"{name} must start without a profile"
