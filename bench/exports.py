"""Benchmark a data export's build: wall time and peak memory, against how much the account holds.

Cases (each in a fresh Python process, on the embedded SQLite database and local storage in
a temporary directory, so the figures are the build's own): a user with G generations of one
output of S bytes each (random, so incompressible) and G ledger rows, for
- many small outputs:  2000 x 16 KiB
- some medium ones:     200 x 256 KiB
- few large ones:        10 x 32 MiB

Per case: the seconds of one `build_export` (rows read, ZIP written to the temp directory,
streamed to storage, READY), the archive's size, and the growth of the process's peak RSS
(VmHWM, reset through /proc/self/clear_refs just before the build) over its RSS before it.
The archive is never held in memory, so the growth should not follow the data's size.

    .venv/bin/python bench/exports.py [--only small|medium|large]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = {"small": (2000, 16 * 1024), "medium": (200, 256 * 1024), "large": (10, 32 * 1024 * 1024)}


def kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def run_case(count: int, size: int, root: Path) -> dict[str, float | int | bool]:
    from domain.catalogue import AiModel, ModelKind
    from domain.credits import LedgerEntry, LedgerKind
    from domain.data_exports import DataExport, ExportStatus
    from domain.generations import Generation, GenerationStatus
    from domain.repositories import Asset
    from domain.users import Role, User
    from infrastructure.bootstrap import open_services
    from infrastructure.migrations.runner import ensure_sqlite_dir, upgrade
    from infrastructure.settings import Settings

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="development",
        data_dir=root / "data",
        local_storage_path=root / "objects",
        media_temp_dir=root / "scratch",
        seed_demo=False,
    )
    ensure_sqlite_dir(settings.effective_database_url)
    await upgrade(settings.effective_database_url)
    async with open_services(settings) as services:
        c = services.adapters
        now = c.clock.now()
        user = User(uuid.uuid4(), "bench@example.com", Role.USER, now)
        model = AiModel(uuid.uuid4(), "bench-model", "Bench", "simulated", ModelKind.IMAGE, 1)
        async with c.uow() as uow:
            await uow.users.add(user)
            await uow.credits.ensure_account(user.id)
            await uow.catalogue.save_model(model)
            await uow.commit()
        for n in range(count):
            g = Generation(
                uuid.uuid4(), user.id, model.id, f"prompt {n}", GenerationStatus.SUCCEEDED, now, now, finished_at=now
            )
            stored = await c.storage.put_bytes(
                f"outputs/{user.id}/{g.id}/0.png", os.urandom(size), content_type="image/png"
            )
            async with c.uow() as uow:
                await uow.generations.add(g)
                await uow.generations.add_asset(
                    Asset(uuid.uuid4(), g.id, "output", 0, stored.key, "image/png", size, now, sha256=stored.sha256)
                )
                await uow.credits.add_entry(LedgerEntry(uuid.uuid4(), user.id, LedgerKind.GRANT, 1, f"b{n}", now))
                await uow.commit()
        export = DataExport(uuid.uuid4(), user.id, ExportStatus.PENDING, now, now)
        async with c.uow() as uow:
            await uow.data_exports.add(export)
            await uow.commit()
        before = kib("VmRSS")
        reset = reset_peak()
        started = time.perf_counter()
        status = await services.data_exports.build(export.id)
        seconds = time.perf_counter() - started
        peak = kib("VmHWM")
        async with c.uow() as uow:
            done = await uow.data_exports.get(export.id)
        assert status is ExportStatus.READY and done is not None and done.size is not None, (status, done)
        return {
            "seconds": round(seconds, 2),
            "archive_mib": round(done.size / 1024 / 1024, 1),
            "rss_before_mib": round(before / 1024, 1),
            "peak_growth_mib": round((peak - before) / 1024, 1),
            "peak_reset": reset,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(CASES))
    parser.add_argument("--case", nargs=2, type=int, metavar=("COUNT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp:
            print(json.dumps(asyncio.run(run_case(args.case[0], args.case[1], Path(tmp)))))
        return 0
    print(f"{'case':<8} {'outputs':>8} {'each KiB':>9} {'archive MiB':>12} {'seconds':>8} {'peak RSS growth MiB':>20}")
    for name, (count, size) in CASES.items():
        if args.only and name != args.only:
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--case", str(count), str(size)], capture_output=True, text=True, check=True
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        growth = f"{r['peak_growth_mib']}" + ("" if r["peak_reset"] else " (peak not reset)")
        print(f"{name:<8} {count:>8} {size // 1024:>9} {r['archive_mib']:>12} {r['seconds']:>8} {growth:>20}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
