"""deploy/fly.toml, deploy/render.yaml and deploy/koyeb.md: parsed, key fields asserted.

Neither host publishes its configuration schema in a package this project can
install, so the fields the deployment depends on are asserted one by one.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SECRET_WORDS = ("SECRET", "PASSWORD", "API_KEY", "ACCESS_KEY", "DATABASE_URL", "REDIS_URL")
APP_SECRETS = (
    "S3_BUCKET",
    "S3_ENDPOINT_URL",
    "S3_PUBLIC_ENDPOINT_URL",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "KIE_API_KEY",
    "KIE_CALLBACK_SECRET",
    "PUBLIC_BASE_URL",
    "SMTP_HOST",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "MAIL_FROM",
)


# --- Fly.io -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fly() -> dict[str, Any]:
    return tomllib.loads((DEPLOY / "fly.toml").read_text())


def test_fly_app_and_build(fly: dict[str, Any]) -> None:
    assert fly["app"] == "genhub"
    assert (DEPLOY / fly["build"]["dockerfile"]).resolve() == REPO / "Dockerfile"


def test_fly_migrates_in_the_release_command(fly: dict[str, Any]) -> None:
    assert fly["deploy"]["release_command"] == "genhub migrate"
    # The release command already migrated: the app Machines need not.
    assert fly["env"]["SKIP_MIGRATIONS"] == "1"


def test_fly_processes_run_the_three_roles(fly: dict[str, Any]) -> None:
    assert fly["processes"] == {
        "app": "genhub serve",
        "worker": "genhub worker",
        "scheduler": "genhub scheduler",
    }


def test_fly_http_service_serves_the_app_on_port_8000_with_a_health_check(fly: dict[str, Any]) -> None:
    http = fly["http_service"]
    assert http["internal_port"] == 8000 == int(fly["env"]["PORT"])
    assert http["force_https"] is True
    assert http["processes"] == ["app"]
    (check,) = http["checks"]
    assert check["path"] == "/health"
    assert check["method"] == "GET"


def test_fly_env_holds_no_secrets(fly: dict[str, Any]) -> None:
    for key in fly["env"]:
        assert not any(word in key for word in SECRET_WORDS), f"{key} belongs in `fly secrets set`"
    assert fly["env"]["ENVIRONMENT"] == "production"
    assert fly["env"]["STORAGE_BACKEND"] == "s3"


def test_fly_vm_sizes_cover_every_process(fly: dict[str, Any]) -> None:
    covered = {process for vm in fly["vm"] for process in vm["processes"]}
    assert covered == set(fly["processes"])


# --- Render -------------------------------------------------------------------


@pytest.fixture(scope="module")
def render() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "render.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _service(render: dict[str, Any], name: str) -> dict[str, Any]:
    (service,) = [s for s in render["services"] if s["name"] == name]
    return service


def _env_vars(render: dict[str, Any], service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The service's variables by key, with its environment groups expanded."""
    groups = {g["name"]: g["envVars"] for g in render.get("envVarGroups", [])}
    result: dict[str, dict[str, Any]] = {}
    for entry in service.get("envVars", []):
        if "fromGroup" in entry:
            for grouped in groups[entry["fromGroup"]]:
                result[grouped["key"]] = grouped
        else:
            result[entry["key"]] = entry
    return result


def test_render_defines_web_worker_scheduler_keyvalue_and_postgres(render: dict[str, Any]) -> None:
    kinds = {(s["name"], s["type"]) for s in render["services"]}
    assert kinds == {
        ("genhub-api", "web"),
        ("genhub-worker", "worker"),
        ("genhub-scheduler", "worker"),
        ("genhub-redis", "keyvalue"),
    }
    (database,) = render["databases"]
    assert database["name"] == "genhub-db"
    assert database["postgresMajorVersion"] == "16"


def test_render_services_build_the_dockerfile_and_run_one_role_each(render: dict[str, Any]) -> None:
    for name, role in (("genhub-api", "serve"), ("genhub-worker", "worker"), ("genhub-scheduler", "scheduler")):
        service = _service(render, name)
        assert service["runtime"] == "docker"
        assert service["dockerfilePath"] == "./Dockerfile"
        assert service["dockerCommand"] == f"/app/docker/entrypoint.sh {role}"


def test_render_web_service_has_a_health_check(render: dict[str, Any]) -> None:
    assert _service(render, "genhub-api")["healthCheckPath"] in ("/ready", "/health")


def test_render_runs_exactly_one_scheduler(render: dict[str, Any]) -> None:
    scheduler = _service(render, "genhub-scheduler")
    assert scheduler["numInstances"] == 1
    assert "scaling" not in scheduler


def test_render_key_value_never_evicts_the_queue(render: dict[str, Any]) -> None:
    redis = _service(render, "genhub-redis")
    assert redis["maxmemoryPolicy"] == "noeviction"
    assert redis["ipAllowList"] == []


def test_render_wires_database_and_redis_into_every_app_service(render: dict[str, Any]) -> None:
    for name in ("genhub-api", "genhub-worker", "genhub-scheduler"):
        env = _env_vars(render, _service(render, name))
        assert env["DATABASE_URL"]["fromDatabase"] == {"name": "genhub-db", "property": "connectionString"}
        assert env["REDIS_URL"]["fromService"] == {
            "type": "keyvalue",
            "name": "genhub-redis",
            "property": "connectionString",
        }
        assert env["ENVIRONMENT"]["value"] == "production"
        assert env["JWT_SECRET"] == {"key": "JWT_SECRET", "generateValue": True}


def test_render_gives_every_app_service_the_same_signing_secrets(render: dict[str, Any]) -> None:
    # the worker derives the API's reset links again: JWT_SECRET (and URL_SIGNING_SECRET, if any) alike
    app_services = [s for s in render["services"] if s["type"] in ("web", "worker")]
    for key in ("JWT_SECRET", "URL_SIGNING_SECRET"):
        values = [_env_vars(render, s).get(key) for s in app_services]
        assert all(v == values[0] for v in values), key
    assert values[0] is None and _env_vars(render, app_services[0])["JWT_SECRET"]["generateValue"] is True


def test_render_secrets_are_entered_once_and_shared(render: dict[str, Any]) -> None:
    api_env = _env_vars(render, _service(render, "genhub-api"))
    for key in APP_SECRETS:
        assert api_env[key].get("sync") is False, key
    for name in ("genhub-worker", "genhub-scheduler"):
        env = _env_vars(render, _service(render, name))
        for key in APP_SECRETS:
            assert env[key]["fromService"] == {"type": "web", "name": "genhub-api", "envVarKey": key}, key


def test_render_references_point_at_defined_resources(render: dict[str, Any]) -> None:
    services = {(s["type"], s["name"]) for s in render["services"]}
    databases = {d["name"] for d in render["databases"]}
    for service in render["services"]:
        for entry in service.get("envVars", []):
            if "fromService" in entry:
                ref = entry["fromService"]
                assert (ref["type"], ref["name"]) in services, ref
            if "fromDatabase" in entry:
                assert entry["fromDatabase"]["name"] in databases


def test_render_yaml_hardcodes_no_secret(render: dict[str, Any]) -> None:
    for service in render["services"]:
        for key, entry in _env_vars(render, service).items():
            if any(word in key for word in SECRET_WORDS):
                assert "value" not in entry, f"{service['name']}: {key} must not be written in the Blueprint"


def test_render_documents_the_persistent_disk_variant() -> None:
    text = (DEPLOY / "render.yaml").read_text()
    # Comment lines without their "# " prefix, so the YAML inside keeps its indentation.
    commented = "\n".join(match.group(1) for line in text.splitlines() if (match := re.match(r"\s*# ?(.*)$", line)))
    assert "ONE instance" in commented
    snippet = re.search(r"^dockerCommand: /app/docker/entrypoint.sh all\n.*?sizeGB: \d+$", commented, re.S | re.M)
    assert snippet, "the disk variant's YAML"
    variant = yaml.safe_load(snippet.group(0))
    assert variant["disk"]["mountPath"] == "/var/data"
    assert "LOCAL_STORAGE_PATH" in commented and "value: local" in commented


# --- Koyeb --------------------------------------------------------------------


def test_koyeb_notes_name_port_health_check_and_r2_settings() -> None:
    text = (DEPLOY / "koyeb.md").read_text()
    for needle in (
        "`8000`",
        "**`/health`**",
        "S3_ENDPOINT_URL` | `https://<account_id>.r2.cloudflarestorage.com`",
        "`S3_REGION` | `auto`",
        "`S3_ADDRESSING_STYLE` | `path`",
        "presigned PUT",
        "presigned POST",
        "exactly one",
    ):
        assert needle in text, needle


# --- Client addresses: TRUSTED_PROXY_HOPS per host (docs/deploy.md) ---------------------


def _hops(value: object) -> int:
    """The value as the app reads it, refused like the app refuses it."""
    from infrastructure.settings import Settings

    hops: int = Settings(_env_file=None, trusted_proxy_hops=value).trusted_proxy_hops  # type: ignore[call-arg]
    return hops


def test_fly_counts_two_proxy_hops(fly: dict[str, Any]) -> None:
    # Fly Proxy appends the client, then the app's anycast address.
    assert _hops(fly["env"]["TRUSTED_PROXY_HOPS"]) == 2
    assert "FORWARDED_ALLOW_IPS" not in fly["env"]


def test_render_counts_three_proxy_hops_on_the_web_service(render: dict[str, Any]) -> None:
    # Cloudflare, Render's edge and an internal balancer each append one entry.
    env = _env_vars(render, _service(render, "genhub-api"))
    assert _hops(env["TRUSTED_PROXY_HOPS"]["value"]) == 3
    assert "FORWARDED_ALLOW_IPS" not in env


def test_koyeb_notes_set_one_proxy_hop() -> None:
    text = (DEPLOY / "koyeb.md").read_text()
    assert "| `TRUSTED_PROXY_HOPS` | `1`" in text
    assert "FORWARDED_ALLOW_IPS" not in text


def test_nginx_appends_exactly_one_entry_and_the_guide_counts_it() -> None:
    conf = (REPO / "docker" / "nginx.conf").read_text()
    appends = re.findall(r"proxy_set_header\s+X-Forwarded-For\s+(\S+);", conf)
    assert appends == ["$proxy_add_x_forwarded_for"]
    guide = (REPO / "docs" / "deploy.md").read_text()
    assert "`TRUSTED_PROXY_HOPS=1` in `.env`" in guide


def test_no_config_relies_on_uvicorn_proxy_headers() -> None:
    # uvicorn's proxy headers took the left-most (client-written) entry; genhub turns them off.
    for path in (DEPLOY / "fly.toml", DEPLOY / "render.yaml", DEPLOY / "koyeb.md", REPO / "docs" / "deploy.md"):
        assert "FORWARDED_ALLOW_IPS" not in path.read_text(), path
    assert "proxy_headers=False" in (REPO / "entrypoints" / "cli.py").read_text()
