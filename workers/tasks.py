"""Taskiq tasks: plain functions of their arguments and the process's Services, and the one
function that registers them on a broker (`register_tasks`), called by whoever built it.

Each task is thin: decode its arguments, call one bound use case. Every use case is
idempotent, so at-least-once delivery is safe.
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Annotated

from taskiq import AsyncBroker, Context, TaskiqDepends, TaskiqState

from domain.emails import SEND_EMAIL_TASK, EmailMessage
from domain.use_cases.callbacks import CALLBACK_TASK
from domain.use_cases.data_exports import BUILD_EXPORT_TASK
from domain.use_cases.generations import CANCEL_TASK, SUBMIT_TASK
from domain.use_cases.mail import SEND_QUEUED_EMAIL_TASK
from domain.use_cases.orphans import ORPHAN_SWEEP_TASK
from domain.use_cases.password_reset import SEND_RESET_TASK
from domain.use_cases.processing import FINALIZE_TASK
from domain.use_cases.storage_deletions import STORAGE_DELETION_TASK
from domain.use_cases.thumbnails import THUMBNAIL_TASK
from domain.use_cases.webhook_outbox import DELIVER_TASK
from infrastructure.bootstrap import Services
from infrastructure.settings import Settings
from infrastructure.task_runtime import services_in

log = logging.getLogger("genhub.tasks")

POLL_TASK = "poll_active_generations"
EXPIRE_TASK = "expire_stuck_generations"
REFRESH_TASK = "refresh_generation"
SWEEP_CHUNKS_TASK = "sweep_pending_chunks"
SWEEP_CHUNKS_SECONDS = 600
SWEEP_THUMBNAILS_TASK = "requeue_pending_thumbnails"
SWEEP_MAIL_TASK = "send_due_emails"
SWEEP_EXPORTS_TASK = "sweep_data_exports"
SWEEP_WEBHOOKS_TASK = "sweep_webhook_deliveries"


def current_services(state: Annotated[TaskiqState, TaskiqDepends()]) -> Services:
    return services_in(state)


ServicesDep = Annotated[Services, TaskiqDepends(current_services)]


async def submit_generation(generation_id: str, services: ServicesDep) -> None:
    await services.processing.submit(uuid.UUID(generation_id))


async def refresh_generation(generation_id: str, services: ServicesDep) -> None:
    await services.processing.refresh(uuid.UUID(generation_id))


# A finalize takes the same path as a refresh: the provider's own answer decides, and only
# one finalize wins. Two task names, because messages of both are in flight in every deployment.
finalize_generation = refresh_generation


async def handle_provider_callback(
    provider: str, external_id: str, services: ServicesDep, generation_id: str | None = None
) -> None:
    """`generation_id`: a task id we never recorded, whose callback URL named a generation waiting for it."""
    named = uuid.UUID(generation_id) if generation_id is not None else None
    await services.processing.handle_callback(provider, external_id, named)


async def cancel_provider_task(
    generation_id: str,
    services: ServicesDep,
    model_id: str | None = None,
    external_id: str | None = None,
    provider: str | None = None,
) -> None:
    """`model_id`, `external_id` and `provider` (domain/use_cases/generations.py cancel_task_args) reach the
    provider after the generation is deleted; messages from before they existed carry `generation_id` only."""
    model = uuid.UUID(model_id) if model_id is not None else None
    await services.processing.cancel_remote(
        uuid.UUID(generation_id), model_id=model, external_id=external_id, provider=provider
    )


async def poll_active_generations(services: ServicesDep) -> dict[str, int]:
    report = await services.processing.poll_active()
    return {"polled": report.polled, "finalizing": report.finalizing, "resubmitted": report.resubmitted}


async def expire_stuck_generations(services: ServicesDep) -> int:
    """Expire what is past its deadline, then repair the providers' in-flight slots from the database."""
    expired = await services.processing.expire_stuck()
    if expired:
        log.info("expired %d generation(s) past their deadline", expired)
    await services.processing.reconcile_slots()
    return expired


async def sweep_pending_chunks(services: ServicesDep) -> int:
    """PENDING uploads never completed are removed with their objects."""
    removed = await services.chunks.sweep_pending()
    if removed:
        log.info("swept %d stale pending chunks", removed)
    return removed


async def make_thumbnails(generation_id: str, services: ServicesDep) -> int:
    return await services.thumbnails.make(uuid.UUID(generation_id))


async def requeue_pending_thumbnails(services: ServicesDep) -> int:
    """Outputs whose thumbnail is still pending after the grace period (a lost message, a retry, a backfill)."""
    queued = await services.thumbnails.requeue_pending()
    if queued:
        log.info("queued thumbnails again for %d generation(s)", queued)
    return queued


async def send_email(
    to: str,
    subject: str,
    text: str,
    services: ServicesDep,
    context: Annotated[Context, TaskiqDepends()],
    html: str | None = None,
) -> str:
    """Record one message (domain/emails.py `as_task_args`) under this task message's id, and send it."""
    message = EmailMessage.from_task_args({"to": to, "subject": subject, "text": text, "html": html})
    return (await services.mail.send(context.message.task_id, message)).value


async def send_password_reset(
    reset_id: str, services: ServicesDep, context: Annotated[Context, TaskiqDepends()]
) -> str:
    """A reset request's e-mail (domain/use_cases/password_reset.py), when there is one to send: queued
    for every request, so the queue does not tell which addresses have an account."""
    message = await services.passwords.reset_email(uuid.UUID(reset_id))
    if message is None:
        return "nothing to send"
    return (await services.mail.send(context.message.task_id, message)).value


async def send_queued_email(email_id: str, services: ServicesDep) -> str:
    return (await services.mail.send_queued(uuid.UUID(email_id))).value


async def send_due_emails(services: ServicesDep) -> int:
    """Messages due again (a retry, or an attempt whose worker died): one attempt queued for each."""
    return await services.mail.send_due()


async def delete_storage_objects(services: ServicesDep) -> dict[str, int]:
    """Objects whose rows are gone (the deletion outbox): kicked after each deletion, and periodic (retries)."""
    report = await services.storage.drain_deletions()
    return {"deleted": report.deleted, "failed": report.failed}


async def build_data_export(export_id: str, services: ServicesDep) -> str | None:
    status = await services.data_exports.build(uuid.UUID(export_id))
    return status.value if status is not None else None


async def sweep_data_exports(services: ServicesDep) -> dict[str, int]:
    """Builds nobody holds are queued again; expired archives are deleted."""
    report = await services.data_exports.sweep()
    if report.requeued or report.expired:
        log.info("data exports: %d build(s) queued again, %d archive(s) expired", report.requeued, report.expired)
    return {"requeued": report.requeued, "expired": report.expired}


async def sweep_orphaned_objects(services: ServicesDep) -> dict[str, int]:
    """Objects no row names, older than ORPHAN_GRACE_SECONDS, deleted (`genhub storage orphans` reports them)."""
    report = await services.storage.sweep_orphans(dry_run=False)
    return {"scanned": report.scanned, "deleted": report.deleted, "failed": report.failed}


async def deliver_webhook(delivery_id: str, services: ServicesDep, token: str | None = None) -> str | None:
    """One attempt of a webhook delivery (domain/use_cases/webhook_deliveries.py); `token` is its dispatch's."""
    status = await services.webhooks.deliver(uuid.UUID(delivery_id), uuid.UUID(token) if token else None)
    return status.value if status is not None else None


async def sweep_webhook_deliveries(services: ServicesDep) -> int:
    """Deliveries due (retries, lost tasks, attempts whose worker died): one task queued for each."""
    return await services.webhooks.sweep()


def register_tasks(broker: AsyncBroker, settings: Settings) -> AsyncBroker:
    """Every task on `broker`, with the interval labels the scheduler reads (`settings`' poll interval)."""
    # The scheduler process only knows whole seconds (the embedded loop uses the exact value).
    every = max(1, math.ceil(settings.poll_interval_seconds))

    def periodic(name: str, seconds: int) -> dict[str, object]:
        return {"schedule": [{"interval": seconds, "schedule_id": name}]}

    broker.register_task(submit_generation, task_name=SUBMIT_TASK)
    broker.register_task(refresh_generation, task_name=REFRESH_TASK)
    broker.register_task(finalize_generation, task_name=FINALIZE_TASK)
    broker.register_task(handle_provider_callback, task_name=CALLBACK_TASK)
    broker.register_task(cancel_provider_task, task_name=CANCEL_TASK)
    broker.register_task(poll_active_generations, task_name=POLL_TASK, **periodic(POLL_TASK, every))
    broker.register_task(expire_stuck_generations, task_name=EXPIRE_TASK, **periodic(EXPIRE_TASK, every))
    broker.register_task(
        sweep_pending_chunks, task_name=SWEEP_CHUNKS_TASK, **periodic(SWEEP_CHUNKS_TASK, SWEEP_CHUNKS_SECONDS)
    )
    broker.register_task(make_thumbnails, task_name=THUMBNAIL_TASK)
    broker.register_task(send_email, task_name=SEND_EMAIL_TASK)
    broker.register_task(send_queued_email, task_name=SEND_QUEUED_EMAIL_TASK)
    broker.register_task(send_password_reset, task_name=SEND_RESET_TASK)
    broker.register_task(
        send_due_emails, task_name=SWEEP_MAIL_TASK, **periodic(SWEEP_MAIL_TASK, settings.mail_sweep_seconds)
    )
    broker.register_task(
        requeue_pending_thumbnails,
        task_name=SWEEP_THUMBNAILS_TASK,
        **periodic(SWEEP_THUMBNAILS_TASK, settings.thumbnail_sweep_seconds),
    )
    broker.register_task(
        delete_storage_objects,
        task_name=STORAGE_DELETION_TASK,
        **periodic(STORAGE_DELETION_TASK, settings.storage_deletion_sweep_seconds),
    )
    broker.register_task(build_data_export, task_name=BUILD_EXPORT_TASK)
    broker.register_task(
        sweep_data_exports,
        task_name=SWEEP_EXPORTS_TASK,
        **periodic(SWEEP_EXPORTS_TASK, settings.data_export_sweep_seconds),
    )
    broker.register_task(
        sweep_orphaned_objects,
        task_name=ORPHAN_SWEEP_TASK,
        **periodic(ORPHAN_SWEEP_TASK, settings.orphan_sweep_seconds),
    )
    broker.register_task(deliver_webhook, task_name=DELIVER_TASK)
    broker.register_task(
        sweep_webhook_deliveries,
        task_name=SWEEP_WEBHOOKS_TASK,
        **periodic(SWEEP_WEBHOOKS_TASK, settings.webhook_sweep_seconds),
    )
    return broker
