"""Apply Alembic migrations programmatically; on PostgreSQL under an advisory lock."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent
# Any constant works; it only has to be the same for every replica of genhub.
ADVISORY_LOCK_ID = 0x67656E687562


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def _run(url: str, action: str, revision: str) -> None:
    cfg = alembic_config(url)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            is_pg = conn.dialect.name == "postgresql"
            if is_pg:
                # Several replicas may start at once: one migrates, the others wait, then find nothing to do.
                await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
                await conn.commit()

            def _apply(sync_conn: Connection) -> None:
                cfg.attributes["connection"] = sync_conn
                if action == "upgrade":
                    command.upgrade(cfg, revision)
                else:
                    command.downgrade(cfg, revision)

            try:
                await conn.run_sync(_apply)
                await conn.commit()
            finally:
                if is_pg:
                    await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
                    await conn.commit()
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    await _run(url, "upgrade", revision)


async def downgrade(url: str, revision: str) -> None:
    await _run(url, "downgrade", revision)


def ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite") and ":///" in url:
        path = Path(url.split(":///", 1)[1])
        path.parent.mkdir(parents=True, exist_ok=True)
