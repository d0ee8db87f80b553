"""A provider's outputs copied into our storage, verified on the way, and their copies removed again.

Nothing a provider says about an output is trusted: each is streamed through the media
workshop onto the worker's disk (never whole in memory), where its type is sniffed from
its bytes and the whole file probed (domain.media, domain.ports.MediaWorkshop). Only then
is it stored, from the spool, under its sniffed type and that type's extension, with the
geometry probing found; a file that is not media we store raises `MediaRejected`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.chunks import output_key
from domain.errors import StorageUnavailable
from domain.generations import Generation, GenerationStatus
from domain.media import MAX_OUTPUTS, MediaInfo, MediaLimits, MediaRejected, ThumbnailState, extension_for
from domain.ports import Provider, StoredObject
from domain.repositories import Asset
from domain.use_cases.processing import ProcessingPorts

log = logging.getLogger("genhub.processing")

OUTPUT_KIND = "output"


@dataclass(frozen=True, slots=True)
class CopiedOutput:
    stored: StoredObject
    info: MediaInfo


async def copy_outputs(
    ports: ProcessingPorts,
    limits: MediaLimits,
    generation: Generation,
    provider: Provider,
    urls: Sequence[str],
    copied: list[CopiedOutput],
) -> None:
    """Verify and store every output in order, appending each to `copied` as soon as it is stored.

    Raises `MediaRejected` at the first output that is not media we store (the ones before
    it are in `copied`), OUTPUT_TOO_MANY before any download when there are more than
    `MAX_OUTPUTS`, and the provider's and the storage's errors unchanged.
    """
    if len(urls) > MAX_OUTPUTS:
        raise MediaRejected("OUTPUT_TOO_MANY", f"{len(urls)} outputs, over {MAX_OUTPUTS}")
    for index, url in enumerate(urls):
        async with ports.media.spool(provider.download(url), limits=limits) as spooled:
            info = spooled.info
            key = output_key(generation.user_id, generation.id, index, extension_for(info.content_type))
            stored = await ports.storage.put_stream(
                key, spooled.read(), content_type=info.content_type, max_size=limits.max_bytes
            )
        copied.append(CopiedOutput(stored, info))


def output_asset(generation: Generation, index: int, output: CopiedOutput, at: datetime) -> Asset:
    """The OUTPUT asset of a copied output, its thumbnail still to be made."""
    return Asset(
        id=uuid.uuid4(),
        generation_id=generation.id,
        kind=OUTPUT_KIND,
        position=index,
        object_key=output.stored.key,
        content_type=output.info.content_type,
        size=output.stored.size,
        created_at=at,
        sha256=output.stored.sha256,
        width=output.info.width,
        height=output.info.height,
        duration_seconds=output.info.duration_seconds,
        thumbnail_state=ThumbnailState.PENDING.value,
    )


async def drop_copies(ports: ProcessingPorts, generation: Generation, copied: Sequence[CopiedOutput]) -> None:
    """A cancel, expiry or failure ended the generation: delete the copies, nothing partial is served.

    Output keys are the same for every finalizer of a generation: while it is still
    active (another worker took the lease over) or SUCCEEDED, the copies are theirs too.
    """
    if not copied:
        return
    async with ports.uow() as uow:
        current = await uow.generations.get(generation.id)
    if current is None or not current.is_final or current.status is GenerationStatus.SUCCEEDED:
        return
    for output in copied:
        try:
            await ports.storage.delete(output.stored.key)
        except StorageUnavailable:
            log.warning("could not delete orphan output %s", output.stored.key)
