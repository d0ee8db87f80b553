"""The mapped classes' tables, for Core statements: reads select their columns and map rows to entities."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from infrastructure.db.models import (
    AdminSettingRow,
    ApiKeyRow,
    AssetRow,
    AuditLogRow,
    BoardInvitationRow,
    BoardMemberRow,
    BoardRow,
    ChunkRow,
    CreditLedgerRow,
    DataExportRow,
    GenerationInputRow,
    GenerationRow,
    GenerationWebhookRow,
    ModelRow,
    OutboundEmailRow,
    PresetRow,
    ProviderAttemptRow,
    ProviderTaskRow,
    RefreshTokenRow,
    StorageDeletionRow,
    UserRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WebhookMessageRow,
    WebhookSecretRow,
)

USERS = cast(Table, UserRow.__table__)
REFRESH_TOKENS = cast(Table, RefreshTokenRow.__table__)
BOARDS = cast(Table, BoardRow.__table__)
BOARD_MEMBERS = cast(Table, BoardMemberRow.__table__)
BOARD_INVITATIONS = cast(Table, BoardInvitationRow.__table__)
MODELS = cast(Table, ModelRow.__table__)
PRESETS = cast(Table, PresetRow.__table__)
GENERATIONS = cast(Table, GenerationRow.__table__)
GENERATION_INPUTS = cast(Table, GenerationInputRow.__table__)
PROVIDER_TASKS = cast(Table, ProviderTaskRow.__table__)
PROVIDER_ATTEMPTS = cast(Table, ProviderAttemptRow.__table__)
ASSETS = cast(Table, AssetRow.__table__)
CHUNKS = cast(Table, ChunkRow.__table__)
CREDIT_LEDGER = cast(Table, CreditLedgerRow.__table__)
ADMIN_SETTINGS = cast(Table, AdminSettingRow.__table__)
OUTBOUND_EMAILS = cast(Table, OutboundEmailRow.__table__)
STORAGE_DELETIONS = cast(Table, StorageDeletionRow.__table__)
DATA_EXPORTS = cast(Table, DataExportRow.__table__)
AUDIT_LOG = cast(Table, AuditLogRow.__table__)
API_KEYS = cast(Table, ApiKeyRow.__table__)
WEBHOOK_ENDPOINTS = cast(Table, WebhookEndpointRow.__table__)
WEBHOOK_SECRETS = cast(Table, WebhookSecretRow.__table__)
GENERATION_WEBHOOKS = cast(Table, GenerationWebhookRow.__table__)
WEBHOOK_MESSAGES = cast(Table, WebhookMessageRow.__table__)
WEBHOOK_DELIVERIES = cast(Table, WebhookDeliveryRow.__table__)
