"""The `genhub` admin commands as a script would use them (real subprocesses, embedded SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GENHUB = str(Path(sys.executable).with_name("genhub"))


def genhub(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "STORAGE_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "WARNING"})
    return subprocess.run([GENHUB, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    result = genhub(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    return tmp_path


def test_create_admin_is_idempotent_and_promotes(migrated: Path) -> None:
    first = genhub(migrated, "create-admin", "--email", "Boss@Example.com", "--password", "a strong password")
    assert first.returncode == 0 and "created admin boss@example.com" in first.stdout
    again = genhub(migrated, "create-admin", "--email", "boss@example.com", "--password", "ignored password 1")
    assert again.returncode == 0 and "promoted admin boss@example.com" in again.stdout


def test_create_admin_rejects_a_weak_password(migrated: Path) -> None:
    result = genhub(migrated, "create-admin", "--email", "weak@example.com", "--password", "short")
    assert result.returncode == 2 and "password" in result.stdout


def test_grant_credits_by_email(migrated: Path) -> None:
    genhub(migrated, "create-admin", "--email", "ops@example.com", "--password", "a strong password")
    ok = genhub(migrated, "grant-credits", "--email", "ops@example.com", "--amount", "40", "--reason", "top-up")
    assert ok.returncode == 0 and "balance 40" in ok.stdout
    keyed = ["grant-credits", "--email", "ops@example.com", "--amount", "5", "--reason", "r", "--idempotency-key", "k"]
    assert "balance 45" in genhub(migrated, *keyed).stdout
    assert "balance 45" in genhub(migrated, *keyed).stdout  # replay: nothing more
    missing = genhub(migrated, "grant-credits", "--email", "nobody@example.com", "--amount", "1", "--reason", "r")
    assert missing.returncode == 2 and "no account" in missing.stdout
    negative = genhub(migrated, "grant-credits", "--email", "ops@example.com", "--amount", "-3", "--reason", "r")
    assert negative.returncode == 2


def test_seed_demo_twice_grants_once(tmp_path: Path) -> None:
    assert genhub(tmp_path, "seed-demo").returncode == 0
    second = genhub(tmp_path, "seed-demo")
    assert second.returncode == 0 and "access token:" in second.stdout
    check = genhub(tmp_path, "grant-credits", "--email", "demo@genhub.local", "--amount", "1", "--reason", "probe")
    assert "balance 1001" in check.stdout


def test_export_schema_check(tmp_path: Path) -> None:
    out = tmp_path / "schema.graphql"
    assert genhub(tmp_path, "export-schema", "--output", str(out)).returncode == 0
    assert genhub(tmp_path, "export-schema", "--output", str(out), "--check").returncode == 0
    out.write_text("type Query { stale: Int }\n", encoding="utf-8")
    stale = genhub(tmp_path, "export-schema", "--output", str(out), "--check")
    assert stale.returncode == 1 and "OUT OF DATE" in stale.stdout


def test_production_refuses_to_serve_without_its_settings(tmp_path: Path) -> None:
    env_args = ("serve", "--port", "1")
    result = subprocess.run(
        [GENHUB, *env_args],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "ENVIRONMENT": "production", "JWT_SECRET": "short"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    # production logs JSON lines (on stderr): one error line names every missing variable
    (refusal,) = [json.loads(line) for line in result.stderr.splitlines() if '"error"' in line]
    for name in ("DATABASE_URL", "REDIS_URL", "JWT_SECRET", "LOCAL_STORAGE_PATH"):
        assert name in refusal["msg"] and any(name in problem for problem in refusal["problems"])
