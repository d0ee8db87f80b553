"""`genhub storage migrate [--dry-run] [--delete-source]`: move each kind's older objects into its own area;
`genhub storage orphans [--dry-run]`: report (and, without --dry-run, delete) objects no row names.

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
    from domain.use_cases.orphans import OrphanReport
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
    orphans = actions.add_parser(
        "orphans",
        help="find uploads, outputs and thumbnails that no row names, older than ORPHAN_GRACE_SECONDS, and delete them",
    )
    orphans.add_argument(
        "--dry-run", action="store_true", help="report them (counts, bytes, sample keys), delete nothing"
    )


def run_storage(settings: Settings, args: argparse.Namespace) -> int:
    if args.storage_command == "orphans":
        return _run_orphans(settings, dry_run=args.dry_run)
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


def _run_orphans(settings: Settings, *, dry_run: bool) -> int:
    try:
        report = asyncio.run(_sweep(settings, dry_run=dry_run))
    except StorageUnavailable as exc:
        _print(f"error: {exc}; run it again once storage answers")
        return 2
    for line in orphan_lines(report, grace_seconds=settings.orphan_grace_seconds):
        _print(line)
    return 1 if report.failed else 0


async def _sweep(settings: Settings, *, dry_run: bool) -> OrphanReport:
    from infrastructure.bootstrap import open_services

    async with open_services(settings) as services:
        return await services.storage.sweep_orphans(dry_run=dry_run)


def orphan_lines(report: OrphanReport, *, grace_seconds: int) -> list[str]:
    would = "would be " if report.dry_run else ""
    lines = [
        f"scanned {report.scanned} object(s), {size(report.scanned_bytes)}",
        f"orphans (no row names them, older than {grace_seconds} s): {report.orphans}, {size(report.orphan_bytes)}",
    ]
    lines += [f"  {prefix} {count}" for prefix, count in report.by_prefix.items()]
    lines.append(f"without a row but younger than the grace period (left alone): {report.recent}")
    lines += [f"  {would}deleted: {shown(key)}" for key in report.samples]
    if report.orphans > len(report.samples):
        lines.append(f"  ... and {report.orphans - len(report.samples)} more")
    if report.dry_run:
        lines.append("dry run: nothing was deleted")
    else:
        lines.append(f"deleted {report.deleted}, failed {report.failed} (a failure is retried by the next sweep)")
    return lines


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
