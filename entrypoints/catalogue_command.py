"""`genhub catalogue apply FILE [--dry-run] [--prune]` and `genhub catalogue export`: the catalogue as a file.

The file is read by infrastructure/catalogue_files.py (YAML or JSON, as untrusted input),
checked and applied by the bound use case (`services.catalogue.apply_document`, all or
nothing); this module only reads arguments and prints the outcome. Whatever came from the
file or the database is printed with control and formatting characters escaped, so a
name cannot rewrite the terminal or hide a change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from domain.catalogue_plan import NOT_SET, Action, CataloguePlan, FieldChange
from domain.errors import InvalidInput
from infrastructure.catalogue_files import (
    CatalogueFileError,
    LoadedDocument,
    dump_document,
    parse_document,
    read_source,
)
from infrastructure.settings import Settings

MARKS = {Action.CREATE: "+", Action.UPDATE: "~", Action.UNCHANGED: "=", Action.ABSENT: "?", Action.DEACTIVATE: "-"}
MAX_SHOWN_VALUE = 80


def add_catalogue_parser(sub: Any) -> None:
    catalogue = sub.add_parser("catalogue", help="apply or export the catalogue of models and presets as a file")
    actions = catalogue.add_subparsers(dest="catalogue_command", required=True)
    apply = actions.add_parser("apply", help="make the catalogue match FILE (idempotent, all or nothing)")
    apply.add_argument("file", metavar="FILE", help="a YAML or JSON catalogue file, or - for standard input")
    apply.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")
    apply.add_argument("--prune", action="store_true", help="deactivate the models FILE does not name")
    apply.add_argument("--format", choices=("yaml", "json"), help="default: json for *.json, else yaml")
    export = actions.add_parser("export", help="print the stored catalogue in the format `apply` reads")
    export.add_argument("--format", choices=("yaml", "json"), default="yaml")
    export.add_argument("--output", default="-", help="file to write, or - for stdout (default)")


def run_catalogue(settings: Settings, args: argparse.Namespace) -> int:
    if args.catalogue_command == "export":
        return _export(settings, args.output, json_format=args.format == "json")
    source: str = args.file
    shown = "standard input" if source == "-" else safe(source)
    json_format = args.format == "json" or (args.format is None and source.lower().endswith(".json"))
    try:
        loaded = parse_document(read_source(source, stdin=sys.stdin.buffer), json_format=json_format)
    except CatalogueFileError as exc:
        _print(f"error: {shown}: {safe(str(exc))}; nothing was written")
        return 2
    return asyncio.run(_apply(settings, loaded, shown, dry_run=args.dry_run, prune=args.prune))


async def _apply(settings: Settings, loaded: LoadedDocument, shown: str, *, dry_run: bool, prune: bool) -> int:
    from infrastructure.bootstrap import open_services

    async with open_services(settings) as services:
        try:
            plan = await services.catalogue.apply_document(loaded.document, dry_run=dry_run, prune=prune)
        except InvalidInput as exc:
            _print(f"error: {shown} has {len(exc.fields)} problem(s); nothing was written")
            for line in problem_lines(exc, loaded):
                _print("  " + line)
            return 2
    for line in plan_lines(plan, prune=prune):
        _print(line)
    if dry_run:
        outcome = "dry run: nothing was written" + ("" if plan.writes else " (nothing would change)")
    else:
        outcome = "applied" if plan.writes else "nothing to change"
    _print(f"{shown}: {outcome}")
    return 0


def _export(settings: Settings, output: str, *, json_format: bool) -> int:
    text = dump_document(asyncio.run(_stored_document(settings)), json_format=json_format)
    if output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        with open(output, "w", encoding="utf-8") as file:
            file.write(text)
        _print(f"wrote {safe(output)}")
    return 0


async def _stored_document(settings: Settings) -> dict[str, Any]:
    from infrastructure.bootstrap import open_services

    async with open_services(settings) as services:
        return await services.catalogue.export_document()


def problem_lines(exc: InvalidInput, loaded: LoadedDocument) -> list[str]:
    """Each problem with its line in the file when known, in the order of the file."""
    located = [(loaded.line_of(p.field), p) for p in exc.fields]
    located.sort(key=lambda item: item[0] or 0)
    return [
        f"{f'line {line}: ' if line is not None else ''}{safe(problem.field)}: {safe(problem.message)}"
        for line, problem in located
    ]


def plan_lines(plan: CataloguePlan, *, prune: bool) -> list[str]:
    lines: list[str] = []
    for model in plan.models:
        what = model.action.value
        if model.action is Action.ABSENT:
            what += ": left alone" + ("" if prune else " (--prune deactivates it)")
        lines.append(f"{MARKS[model.action]} model {safe(model.slug)}: {what}")
        lines.extend(f"    {change_text(c)}" for c in model.changes)
        for preset in model.presets:
            suffix = ": left alone" if preset.action is Action.ABSENT else ""
            lines.append(f"    {MARKS[preset.action]} preset {shown_value(preset.name)}: {preset.action.value}{suffix}")
            lines.extend(f"        {change_text(c)}" for c in preset.changes)
    summary = []
    for action in Action:
        models, presets = plan.count(action)
        if models or presets:
            summary.append(f"{action.value}: {models} model(s), {presets} preset(s)")
    lines.append("; ".join(summary) if summary else "the file and the database are both empty")
    return lines


def change_text(change: FieldChange) -> str:
    return f"{safe(change.field)}: {shown_value(change.before)} -> {shown_value(change.after)}"


def shown_value(value: Any) -> str:
    if value is NOT_SET:
        return "(not set)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    text = safe(text)
    return text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 3] + "..."


def safe(text: str) -> str:
    """`text` with every non-printable character (controls, bidi overrides, zero-width ones) escaped."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
