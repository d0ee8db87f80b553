"""SQLAlchemy unit of work: one session, one transaction, every repository on it.

A connection-level failure inside the block (PostgreSQL down, restarting, out of connections)
leaves it as `ServiceUnavailable` (infrastructure/outages.py); every other error as it was. A
connection that breaks while `commit()` waits for COMMIT's reply leaves `OutcomeUnknown`: the
transaction may have been committed.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.errors import ServiceUnavailable
from infrastructure.db.repositories.api_keys import SqlApiKeyRepository
from infrastructure.db.repositories.audit_log import SqlAuditLog
from infrastructure.db.repositories.boards import SqlBoardRepository
from infrastructure.db.repositories.catalogue import SqlAdminSettingsRepository, SqlCatalogueRepository
from infrastructure.db.repositories.chunks import SqlChunkRepository
from infrastructure.db.repositories.credits import SqlCreditRepository
from infrastructure.db.repositories.data_exports import SqlDataExportRepository
from infrastructure.db.repositories.generations import SqlGenerationRepository
from infrastructure.db.repositories.invitations import SqlBoardInvitationRepository
from infrastructure.db.repositories.password_resets import SqlPasswordResetRepository
from infrastructure.db.repositories.storage_deletions import SqlStorageDeletionRepository
from infrastructure.db.repositories.user_directory import SqlUserDirectory
from infrastructure.db.repositories.users import SqlRefreshTokenRepository, SqlUserRepository
from infrastructure.db.repositories.webhooks import SqlWebhookRepository
from infrastructure.outages import DATABASE, raise_if_outage, translating


class SqlRepositories:
    """Every repository on one session (a unit of work's, or a request read scope's)."""

    users: SqlUserRepository
    refresh_tokens: SqlRefreshTokenRepository
    password_resets: SqlPasswordResetRepository
    credits: SqlCreditRepository
    catalogue: SqlCatalogueRepository
    admin_settings: SqlAdminSettingsRepository
    generations: SqlGenerationRepository
    boards: SqlBoardRepository
    chunks: SqlChunkRepository
    invitations: SqlBoardInvitationRepository
    storage_deletions: SqlStorageDeletionRepository
    data_exports: SqlDataExportRepository
    user_directory: SqlUserDirectory
    audit: SqlAuditLog
    api_keys: SqlApiKeyRepository
    webhooks: SqlWebhookRepository

    def __init__(self, session: AsyncSession) -> None:
        self._attach(session)

    def _attach(self, session: AsyncSession) -> None:
        self.users = SqlUserRepository(session)
        self.refresh_tokens = SqlRefreshTokenRepository(session)
        self.password_resets = SqlPasswordResetRepository(session)
        self.credits = SqlCreditRepository(session)
        self.catalogue = SqlCatalogueRepository(session)
        self.admin_settings = SqlAdminSettingsRepository(session)
        self.generations = SqlGenerationRepository(session)
        self.boards = SqlBoardRepository(session)
        self.chunks = SqlChunkRepository(session)
        self.invitations = SqlBoardInvitationRepository(session)
        self.storage_deletions = SqlStorageDeletionRepository(session)
        self.data_exports = SqlDataExportRepository(session)
        self.user_directory = SqlUserDirectory(session)
        self.audit = SqlAuditLog(session)
        self.api_keys = SqlApiKeyRepository(session)
        self.webhooks = SqlWebhookRepository(session)

    def _take(self, other: SqlRepositories) -> None:
        self.users = other.users
        self.refresh_tokens = other.refresh_tokens
        self.password_resets = other.password_resets
        self.credits = other.credits
        self.catalogue = other.catalogue
        self.admin_settings = other.admin_settings
        self.generations = other.generations
        self.boards = other.boards
        self.chunks = other.chunks
        self.invitations = other.invitations
        self.storage_deletions = other.storage_deletions
        self.data_exports = other.data_exports
        self.user_directory = other.user_directory
        self.audit = other.audit
        self.api_keys = other.api_keys
        self.webhooks = other.webhooks


class SqlUnitOfWork(SqlRepositories):
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = session_factory
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("The unit of work is not open: use `async with uow:`")
        return self._session

    async def __aenter__(self) -> SqlUnitOfWork:
        session = self._factory()
        self._session = session
        self._attach(session)
        return self

    async def __aexit__(self, *args: object) -> None:
        exc = args[1] if len(args) > 1 else None
        session = self.session
        try:
            with translating(DATABASE):
                try:
                    await session.rollback()
                finally:
                    await session.close()
        except ServiceUnavailable:
            if exc is None:
                raise
            # The block's own error says more (an OutcomeUnknown from commit() above all).
        finally:
            self._session = None
        raise_if_outage(exc, DATABASE)

    async def commit(self) -> None:
        with translating(DATABASE, sends_write=True):
            await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()


class SqlUnitOfWorkFactory:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.session_factory)
