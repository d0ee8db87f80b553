"""SQLAlchemy 2.0 models of the whole data model (PostgreSQL in production, SQLite embedded)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonDoc = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JsonDoc, datetime: Timestamp, uuid.UUID: Uuid()}


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), server_default="user")
    created_at: Mapped[datetime]
    # Migration 0010: a deleted account's tombstone (e-mail replaced, no password), kept for its ledger.
    deleted_at: Mapped[datetime | None]
    #: Bumped by every revocation of all sessions; access tokens carry the value they were issued with.
    session_version: Mapped[int] = mapped_column(server_default="0")
    #: When the sessions were last revoked (what `session_version` was bumped for), for people to read.
    sessions_valid_after: Mapped[datetime | None]
    suspended_at: Mapped[datetime | None]
    __table_args__ = (CheckConstraint("role in ('user', 'admin')", name="role"),)


class RefreshTokenRow(Base):
    """One row per issued refresh token; rotation marks it used, reuse revokes its family."""

    __tablename__ = "refresh_tokens"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class PasswordResetRow(Base):
    """One requested password reset: the hash of its single-use token, until when it works, when it was used."""

    __tablename__ = "password_resets"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ApiKeyRow(Base):
    """One API key: its public lookup id, the SHA-256 of its secret, its scopes (comma-separated)."""

    __tablename__ = "api_keys"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    lookup_id: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class BoardRow(Base):
    __tablename__ = "boards"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]


class BoardMemberRow(Base):
    __tablename__ = "board_members"
    board_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    __table_args__ = (
        CheckConstraint("role in ('owner', 'editor', 'viewer')", name="role"),
        Index("ix_board_members_user_id", "user_id"),
    )


class BoardInvitationRow(Base):
    """A pending invitation to a board for an e-mail address (normalised), whether or not it has an account."""

    __tablename__ = "board_invitations"
    board_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    email_as_typed: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    invited_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    __table_args__ = (
        CheckConstraint("role in ('owner', 'editor', 'viewer')", name="role"),
        Index("ix_board_invitations_email", "email"),
    )


class ModelRow(Base):
    __tablename__ = "models"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    cost_credits: Mapped[int] = mapped_column(Integer)
    capabilities: Mapped[dict[str, Any]]
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (
        CheckConstraint("kind in ('image', 'video')", name="kind"),
        CheckConstraint("cost_credits >= 0", name="cost_non_negative"),
    )


class PresetRow(Base):
    __tablename__ = "presets"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class GenerationRow(Base):
    __tablename__ = "generations"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    board_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("boards.id", ondelete="SET NULL"))
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id"))
    preset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("presets.id", ondelete="SET NULL"))
    prompt: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, server_default=text("0"))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    reserved_credits: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    charged_credits: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    provider_task_id: Mapped[str | None] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    deadline_at: Mapped[datetime | None]
    submit_attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # The worker holding the generation (submit or finalize) until next_attempt_at (migration 0005).
    lease_token: Mapped[uuid.UUID | None]
    # Outputs whose thumbnail is not settled yet (migration 0007).
    thumbnails_pending: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # The provider whose route runs it (migration 0019): polls, callbacks and cancels go there.
    provider: Mapped[str | None] = mapped_column(String(32))
    # The route of an earlier submit whose outcome is unknown (migration 0020): retries go there only.
    uncertain_route: Mapped[int | None] = mapped_column(Integer)
    # That route's provider model (migration 0021): the route is found again by provider and model.
    uncertain_model: Mapped[str | None] = mapped_column(String(200))
    # When that uncertain submit was sent (migration 0022): its provider's list is read back to it.
    uncertain_since: Mapped[datetime | None]
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_generations_user_idempotency"),
        Index("ix_generations_user_created", "user_id", "created_at", "id"),
        Index("ix_generations_board_created", "board_id", "created_at", "id"),
        Index("ix_generations_status", "status"),
        CheckConstraint(
            "status in ('queued', 'submitting', 'processing', 'succeeded', 'failed', 'canceled', 'expired')",
            name="status",
        ),
        CheckConstraint("reserved_credits >= 0 and charged_credits >= 0", name="credits_non_negative"),
    )


class GenerationInputRow(Base):
    __tablename__ = "generation_inputs"
    generation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    # A user may delete a file that a finished generation used; the generation keeps its outputs.
    chunk_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chunks.id", ondelete="CASCADE"), index=True)


class ProviderTaskRow(Base):
    __tablename__ = "provider_tasks"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    raw: Mapped[dict[str, Any]]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_polled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("provider", "external_id", name="uq_provider_tasks_provider_external"),)


class ProviderAttemptRow(Base):
    """Each provider route a submitter tried for a generation (migration 0019)."""

    __tablename__ = "provider_attempts"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    submit_attempt: Mapped[int] = mapped_column(Integer)
    route_index: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (CheckConstraint("outcome in ('submitted', 'failed', 'skipped')", name="outcome"),)


class AssetRow(Base):
    __tablename__ = "assets"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    object_key: Mapped[str] = mapped_column(String(512), unique=True)
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    # Migration 0007: what probing found, and the thumbnail of an output.
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    source_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    thumbnail_state: Mapped[str | None] = mapped_column(String(16))
    thumbnail_attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    thumbnail_error: Mapped[str | None] = mapped_column(String(64))
    # Migration 0008: a worker is making the thumbnail until then (the database's clock).
    thumbnail_claimed_until: Mapped[datetime | None]
    # Migration 0016: the token of the worker holding that claim.
    thumbnail_claim_token: Mapped[uuid.UUID | None]
    __table_args__ = (
        CheckConstraint("kind in ('input', 'output', 'thumbnail')", name="kind"),
        CheckConstraint("thumbnail_state in ('pending', 'ready', 'failed')", name="thumbnail_state"),
        Index(
            "ix_assets_thumbnail_pending",
            "created_at",
            postgresql_where=text("thumbnail_state = 'pending'"),
            sqlite_where=text("thumbnail_state = 'pending'"),
        ),
    )


class ChunkRow(Base):
    __tablename__ = "chunks"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    object_key: Mapped[str] = mapped_column(String(512), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    __table_args__ = (
        Index("ix_chunks_user_created", "user_id", "created_at", "id"),
        Index("ix_chunks_status_created", "status", "created_at"),
        CheckConstraint("status in ('pending', 'ready')", name="status"),
        CheckConstraint("size >= 0", name="size_non_negative"),
    )


class CreditAccountRow(Base):
    __tablename__ = "credit_accounts"
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    reserved: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    version: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="reserved_non_negative"),
        CheckConstraint("balance - reserved >= 0", name="available_non_negative"),
    )


class CreditLedgerRow(Base):
    __tablename__ = "credit_ledger"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    generation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("generations.id", ondelete="SET NULL"), index=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    reason: Mapped[str | None] = mapped_column(String(500))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    __table_args__ = (
        Index("ix_credit_ledger_user_created", "user_id", "created_at", "id"),
        CheckConstraint(
            "kind in ('grant', 'reserve', 'capture', 'release', 'refund', 'adjust')",
            name="kind",
        ),
    )


class AdminSettingRow(Base):
    __tablename__ = "admin_settings"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonDoc)
    updated_at: Mapped[datetime]
    updated_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class OutboundEmailRow(Base):
    """One message a worker delivers (domain/use_cases/mail.py); the body is dropped once it is settled."""

    __tablename__ = "outbound_emails"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # The task message that queued it: a redelivered message finds its row instead of a new one.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    # {"text": ..., "html": ...} while pending; NULL once sent or given up on (it may hold a reset link).
    body: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    give_up_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    settled_at: Mapped[datetime | None]
    __table_args__ = (
        Index("ix_outbound_emails_status_next_attempt_at", "status", "next_attempt_at"),
        CheckConstraint("status in ('pending', 'sent', 'undeliverable', 'failed')", name="status"),
    )


class StorageDeletionRow(Base):
    """An object whose row is gone, to be deleted from storage by a worker (migration 0010): the outbox
    written in the same transaction as the row deletion, so no object outlives its row for good."""

    __tablename__ = "storage_deletions"
    object_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Due from then (a claim or a retry's backoff pushes it forward).
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(String(200))


#: The partial unique index's predicate; an INSERT's ON CONFLICT names it in the same words (SQLite needs that).
ACTIVE_EXPORT_PREDICATE = "status in ('pending', 'building')"


class DataExportRow(Base):
    """An archive of a user's data (migration 0011): at most one pending or building per user."""

    __tablename__ = "data_exports"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    object_key: Mapped[str | None] = mapped_column(String(512))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    error_code: Mapped[str | None] = mapped_column(String(64))
    # The worker building it (claim_token) until claimed_until, the database's clock.
    claim_token: Mapped[uuid.UUID | None]
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    __table_args__ = (
        Index("ix_data_exports_user_created", "user_id", "created_at"),
        Index(
            "uq_data_exports_user_active",
            "user_id",
            unique=True,
            postgresql_where=text(ACTIVE_EXPORT_PREDICATE),
            sqlite_where=text(ACTIVE_EXPORT_PREDICATE),
        ),
        Index(
            "ix_data_exports_ready_expires",
            "expires_at",
            postgresql_where=text("status = 'ready'"),
            sqlite_where=text("status = 'ready'"),
        ),
        CheckConstraint("status in ('pending', 'building', 'ready', 'failed', 'expired')", name="status"),
    )


class AuditLogRow(Base):
    """One admin action (domain/audit.py), append-only (migration 0014: PostgreSQL refuses UPDATE and DELETE).

    No foreign keys: an entry outlives what it names (a deleted preset, an anonymised account).
    """

    __tablename__ = "audit_log"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[datetime]
    actor_id: Mapped[uuid.UUID | None]
    actor: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[str | None] = mapped_column(String(200))
    target_user_id: Mapped[uuid.UUID | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    client_address: Mapped[str | None] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(100))
    __table_args__ = (
        Index("ix_audit_log_created", "created_at", "id"),
        Index("ix_audit_log_actor_created", "actor_id", "created_at", "id"),
        Index("ix_audit_log_target_created", "target_id", "created_at", "id"),
        Index("ix_audit_log_action_created", "action", "created_at", "id"),
        CheckConstraint("outcome in ('applied', 'unchanged', 'refused')", name="outcome"),
    )


# ---------------------------------------------------------------- webhooks (migration 0018)

#: A delivery's target in one column: the endpoint's id, or this for the generation's own webhook.
GENERATION_TARGET = "generation"
PENDING_DELIVERY_PREDICATE = "status = 'pending'"


class WebhookEndpointRow(Base):
    """An account-level webhook endpoint (domain/webhook_endpoints.py); `events` is comma-separated."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(200), server_default="")
    enabled: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (Index("ix_webhook_endpoints_user_created", "user_id", "created_at"),)


class WebhookSecretRow(Base):
    """A signing secret, sealed (AES-GCM, infrastructure/security/webhook_secrets.py): an endpoint's, or the
    user's default (endpoint_id null). It signs until `retires_at` (null: the current one)."""

    __tablename__ = "webhook_secrets"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    retires_at: Mapped[datetime | None]
    __table_args__ = (Index("ix_webhook_secrets_owner", "user_id", "endpoint_id"),)


class GenerationWebhookRow(Base):
    """The webhook a generation asked for at its start. No foreign key to generations: it is written
    just before the generation (domain/use_cases/generation_webhooks.py)."""

    __tablename__ = "generation_webhooks"
    generation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class WebhookMessageRow(Base):
    """One message (`msg_...`), its JSON body as sent on every attempt. It outlives its generation."""

    __tablename__ = "webhook_messages"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    generation_id: Mapped[uuid.UUID | None]
    event: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)


class WebhookDeliveryRow(Base):
    """One message on its way to one target, with its attempts (the delivery log).

    Held by `claim_token` until `claimed_until` (a queued task's dispatch, or an attempt), the
    database's clock; due at `next_attempt_at`. At most one pending delivery per message and target.
    """

    __tablename__ = "webhook_deliveries"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("webhook_messages.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    target_key: Mapped[str] = mapped_column(String(40))
    generation_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    event: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_failure: Mapped[str | None] = mapped_column(String(32))
    last_attempt_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime]
    claim_token: Mapped[uuid.UUID | None]
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    __table_args__ = (
        Index("ix_webhook_deliveries_user_created", "user_id", "created_at", "id"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_message", "message_id"),
        Index(
            "uq_webhook_deliveries_pending_target",
            "message_id",
            "target_key",
            unique=True,
            postgresql_where=text(PENDING_DELIVERY_PREDICATE),
            sqlite_where=text(PENDING_DELIVERY_PREDICATE),
        ),
        CheckConstraint("status in ('pending', 'delivered', 'failed')", name="status"),
    )
