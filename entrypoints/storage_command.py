"""`genhub storage migrate [--dry-run] [--delete-source]`: move each kind's older objects into its own area.

Run it before switching a kind to its own bucket or directory (S3_OUTPUTS_BUCKET,
LOCAL_OUTPUTS_PATH, ...: set them for this command only), and once more after every
process runs on the new setting, since processes still on the old one may have written
in between (docs/deploy.md, "Storage layout"). The work is infrastructure/storage/migration.py;
this module reads the arguments and prints the outcome. Keys are printed with anything
outside printable ASCII escaped: a bucket may hold keys someone else wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING, Any

from domain.errors import StorageUnavailable
from infrastructure.settings import Settings

if TYPE_CHECKING:
    from infrastructure.storage.migration import KindMove

MAX_LISTED = 20  # conflicting or failed keys printed per kind; then how many more


def add_storage_parser(sub: Any) -> None:
    storage = sub.add_parser("storage", help="operate on the file storage")
    actions = storage.add_subparsers(dest="storage_command", required=True)
    move = actions.add_parser(
        "migrate", help="copy objects of each kind that has its own bucket/directory out of the default one"
    )
    move.add_argument("--dry-run", action="store_true", help="print what would be copied, change nothing")
    move.add_argument(
        "--delete-source", action="store_true", help="delete each object from the default area once copied"
    )


def run_storage(settings: Settings, args: argparse.Namespace) -> int:
    if args.dry_run:
        # A dry run creates nothing, not even a missing bucket.
        settings = settings.model_copy(update={"s3_create_bucket": False})
    try:
        moves = asyncio.run(_migrate(settings, dry_run=args.dry_run, delete_source=args.delete_source))
    except StorageUnavailable as exc:
        _print(f"error: {exc}; run it again once storage answers (what was copied is skipped)")
        return 2
    if not moves:
        _print("every kind is in the default area (no S3_<KIND>_BUCKET / LOCAL_<KIND>_PATH set): nothing to migrate")
        return 0
    for move in moves:
        for line in report_lines(move, dry_run=args.dry_run):
            _print(line)
    if args.dry_run:
        _print("dry run: nothing was changed")
    return 1 if any(move.conflicts or move.failed for move in moves) else 0


async def _migrate(settings: Settings, *, dry_run: bool, delete_source: bool) -> list[KindMove]:
    # Imported here: the storage clients are no cost of every other command.
    from infrastructure.storage.factory import open_storage
    from infrastructure.storage.migration import migrate

    async with contextlib.AsyncExitStack() as stack:
        storage = await open_storage(settings, stack)
        return await migrate(storage, dry_run=dry_run, delete_source=delete_source)


def report_lines(move: KindMove, *, dry_run: bool) -> list[str]:
    would = "would be " if dry_run else ""
    lines = [
        f"{move.kind}: {move.source} -> {move.target}",
        f"  found {move.found} object(s), {size(move.found_bytes)}",
        f"  {would}copied {move.copied} object(s), {size(move.copied_bytes)}",
        f"  already there {move.present}",
    ]
    if move.deleted:
        lines.append(f"  {would}deleted from the source {move.deleted}")
    for label, keys in (
        ("conflict (another size in the target, both kept)", move.conflicts),
        ("not copied", move.failed),
    ):
        lines += [f"  {label}: {shown(key)}" for key in keys[:MAX_LISTED]]
        if len(keys) > MAX_LISTED:
            lines.append(f"  ... and {len(keys) - MAX_LISTED} more {label.split(' ', 1)[0]}(s)")
    return lines


def size(count: int) -> str:
    """Exact bytes, and a rounded binary unit beside them from 1 KiB on."""
    value, unit = float(count), "bytes"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{count} bytes" if unit == "bytes" else f"{count} bytes ({value:.1f} {unit})"


def shown(key: str) -> str:
    return ascii(key)[1:-1]


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
