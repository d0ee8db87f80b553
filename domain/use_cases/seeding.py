"""Demo data for a first start: a demo account with credits and simulated-provider models."""

from __future__ import annotations

from typing import Any

from domain.catalogue import AiModel, ModelKind
from domain.ports import CatalogueReader, Clock, EventPublisher, PasswordHasher
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import auth, catalogue, credits
from domain.users import Role, User

DEMO_MODELS: tuple[dict[str, Any], ...] = (
    {
        "slug": "sim-image",
        "name": "Simulated image",
        "kind": ModelKind.IMAGE,
        "cost_credits": 10,
        "capabilities": {
            "params": {
                "width": {"type": "int", "min": 64, "max": 2048, "default": 512},
                "height": {"type": "int", "min": 64, "max": 2048, "default": 512},
                "style": {"type": "enum", "values": ["photo", "illustration", "sketch"], "default": "photo"},
                "seed": {"type": "int", "min": 0, "max": 2147483647},
            },
            "maxInputs": 4,
            "deadlineSeconds": 300,
        },
    },
    {
        "slug": "sim-video",
        "name": "Simulated video",
        "kind": ModelKind.VIDEO,
        "cost_credits": 40,
        "capabilities": {
            "params": {
                "durationSeconds": {"type": "int", "min": 1, "max": 10, "default": 4},
                "width": {"type": "int", "min": 64, "max": 640, "default": 640},
                "height": {"type": "int", "min": 64, "max": 640, "default": 360},
                "seed": {"type": "int", "min": 0, "max": 2147483647},
            },
            "maxInputs": 1,
            "deadlineSeconds": 600,
        },
    },
)


async def seed_demo(
    *,
    email: str,
    password: str,
    credits_amount: int,
    uow: UnitOfWorkFactory,
    hasher: PasswordHasher,
    clock: Clock,
    catalogue_cache: CatalogueReader,
    publisher: EventPublisher,
) -> tuple[User, list[AiModel]]:
    """Idempotent: running it again changes nothing (the grant has a fixed key)."""
    user, _ = await auth.ensure_user(
        email=email, password=password, role=Role.USER, uow=uow(), hasher=hasher, clock=clock
    )
    await credits.grant(
        actor=None,
        user_id=user.id,
        amount=credits_amount,
        reason="Demo credits",
        idempotency_key="seed-demo",
        uow=uow(),
        publisher=publisher,
        clock=clock,
    )
    existing: dict[str, AiModel] = {m.slug: m for m in await catalogue_cache.models()}
    models: list[AiModel] = []
    for spec in DEMO_MODELS:
        if spec["slug"] in existing:  # never overwrite what an admin changed
            models.append(existing[spec["slug"]])
            continue
        models.append(
            await catalogue.upsert_model(
                actor=None,
                provider="simulated",
                is_active=True,
                known_providers=frozenset({"simulated"}),
                uow=uow(),
                catalogue=catalogue_cache,
                clock=clock,
                **spec,
            )
        )
    return user, models
