"""No published secret signs anything: an unset JWT_SECRET means a random one, kept per data directory."""

from __future__ import annotations

import multiprocessing
import stat
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.security import local_secrets
from infrastructure.security.local_secrets import local_secret
from infrastructure.settings import DEV_JWT_SECRET, Settings


def make(data_dir: Path, **values: str) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **values)  # type: ignore[arg-type]


def test_an_unset_secret_is_drawn_once_and_kept_private(tmp_path: Path) -> None:
    # given a server started with no secrets, twice on one data directory and once on another
    first, again, other = make(tmp_path / "a"), make(tmp_path / "a"), make(tmp_path / "b")
    # then it signs with a secret of its own: kept across starts, different elsewhere, never the published one
    assert first.effective_jwt_secret == again.effective_jwt_secret
    assert first.effective_jwt_secret != other.effective_jwt_secret
    assert DEV_JWT_SECRET not in {first.effective_jwt_secret, other.effective_jwt_secret}
    assert len(first.effective_jwt_secret) >= 32
    # and URLs are signed with another key than tokens
    assert first.effective_url_secret not in {first.effective_jwt_secret, DEV_JWT_SECRET}
    kept = tmp_path / "a" / "secrets"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700
    for name in ("jwt-secret", "url-signing-secret"):
        assert stat.S_IMODE((kept / name).stat().st_mode) == 0o600


def test_configured_secrets_win_and_replicas_agree_on_url_signing(tmp_path: Path) -> None:
    secret = "a configured secret of at least 32 characters"
    one, two = make(tmp_path / "one", jwt_secret=secret), make(tmp_path / "two", jwt_secret=secret)
    assert one.effective_jwt_secret == secret
    # replicas with their own data directories sign URLs alike: the key is derived, not drawn
    assert one.effective_url_secret == two.effective_url_secret != secret
    assert not (tmp_path / "one" / "secrets").exists()
    assert make(tmp_path, url_signing_secret="u" * 40).effective_url_secret == "u" * 40


def test_a_secret_file_readable_by_others_is_narrowed(tmp_path: Path) -> None:
    secret = local_secret(tmp_path / "c", "jwt-secret")
    path = tmp_path / "c" / "secrets" / "jwt-secret"
    path.chmod(0o644)
    local_secrets._read_or_create.cache_clear()  # as a new process would read it
    assert local_secret(tmp_path / "c", "jwt-secret") == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _draw(path: str) -> str:
    return local_secret(Path(path), "jwt-secret")


@settings(max_examples=3, deadline=None)
@given(processes=st.integers(2, 6))
def test_processes_starting_together_agree_on_one_secret(processes: int) -> None:
    with tempfile.TemporaryDirectory() as folder, multiprocessing.get_context("spawn").Pool(processes) as pool:
        drawn = pool.map(_draw, [folder] * processes)
    assert len(set(drawn)) == 1


def test_forked_processes_drawing_at_the_same_instant_never_read_a_half_written_secret() -> None:
    # Forked workers start within microseconds of each other: the tightest race there is
    # between one process creating the file and another reading it.
    fork = multiprocessing.get_context("fork")
    for _ in range(20):
        with tempfile.TemporaryDirectory() as folder, fork.Pool(6) as pool:
            drawn = pool.map(_draw, [folder] * 6)
            assert len(set(drawn)) == 1
            assert [p.name for p in (Path(folder) / "secrets").iterdir()] == ["jwt-secret"]
