"""Database URLs as hosting platforms hand them out reach asyncpg in a form it accepts.

Render's `fromDatabase: connectionString` (deploy/render.yaml) is
`postgresql://user:pass@host:5432/db`; `fly postgres attach` sets
`postgres://...?sslmode=disable`; Koyeb shows `postgres://...?sslmode=require`.
SQLAlchemy knows no `postgres://` dialect, picks psycopg2 (not installed) for a
bare `postgresql://`, and asyncpg rejects libpq's `sslmode` parameter
("unexpected keyword argument 'sslmode'"); asyncpg's own parameter is `ssl`.
"""

from __future__ import annotations

import pytest

from infrastructure.settings import Settings

PLATFORM_URLS = [
    ("postgresql://u:p@db:5432/genhub", "postgresql+asyncpg://u:p@db:5432/genhub"),
    ("postgres://u:p@db:5432/genhub", "postgresql+asyncpg://u:p@db:5432/genhub"),
    ("postgres://u:p@db/genhub?sslmode=disable", "postgresql+asyncpg://u:p@db/genhub?ssl=disable"),
    ("postgres://u:p@db/genhub?sslmode=require", "postgresql+asyncpg://u:p@db/genhub?ssl=require"),
]


def test_asyncpg_urls_are_used_as_given() -> None:
    url = "postgresql+asyncpg://u:p@db/genhub?ssl=require"
    assert Settings(_env_file=None, database_url=url)  # type: ignore[call-arg].effective_database_url == url


@pytest.mark.parametrize(
    ("given", "expected"),
    PLATFORM_URLS,
)
def test_platform_database_urls_are_made_asyncpg_urls(given: str, expected: str) -> None:
    assert Settings(_env_file=None, database_url=given)  # type: ignore[call-arg].effective_database_url == expected
