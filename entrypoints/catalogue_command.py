"""`genhub catalogue apply FILE [--dry-run] [--prune]` and `genhub catalogue export`: the catalogue as a file.

The file is read by infrastructure/catalogue_files.py (YAML or JSON, as untrusted input),
checked and applied by the bound use case (`services.catalogue.apply_document`, all or
nothing); this module only reads arguments and prints the outcome. Whatever came from the
file or the database is printed with control and formatting characters escaped, so a
name cannot rewrite the terminal or hide a change; `export` writes them as YAML or JSON
escapes (`dump_document`). In the diff a value too long for one line is cut between whole
characters, never inside an escape; when either side of a change is that long, both are
shown from just before their first difference, and a model or preset lists at most MAX_LISTED_CHANGES
changes and then how many more there are.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any

from domain.catalogue_plan import MAX_LISTED_CHANGES, NOT_SET, Action, CataloguePlan, FieldChange
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
MAX_SHOWN_VALUE = 80  # characters of a value shown in the diff, escapes included
CONTEXT = 12  # characters shown before the first difference of two long values
CUT = "..."  # where a shown value was cut

# One character of a JSON text, a JSON escape being one: a value is cut between them.
_JSON_CHAR = re.compile(r"\\u[0-9a-fA-F]{4}|\\.|.", re.DOTALL)


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
        lines.extend(f"    {line}" for line in changes_text(model.changes))
        for preset in model.presets:
            suffix = ": left alone" if preset.action is Action.ABSENT else ""
            lines.append(f"    {MARKS[preset.action]} preset {shown_value(preset.name)}: {preset.action.value}{suffix}")
            lines.extend(f"        {line}" for line in changes_text(preset.changes))
    summary = []
    for action in Action:
        models, presets = plan.count(action)
        if models or presets:
            summary.append(f"{action.value}: {models} model(s), {presets} preset(s)")
    lines.append("; ".join(summary) if summary else "the file and the database are both empty")
    return lines


def changes_text(changes: tuple[FieldChange, ...]) -> list[str]:
    """One line per change, at most MAX_LISTED_CHANGES, then how many more there are."""
    lines = [change_text(c) for c in changes[:MAX_LISTED_CHANGES]]
    if len(changes) > MAX_LISTED_CHANGES:
        lines.append(f"and {len(changes) - MAX_LISTED_CHANGES} more change(s)")
    return lines


def change_text(change: FieldChange) -> str:
    before, after, note = change_parts(change)
    return f"{safe(change.field)}: {before} -> {after}{note}"


def change_parts(change: FieldChange) -> tuple[str, str, str]:
    """Before and after as shown, and a note: values too long to show whole are shown from before where they differ."""
    before, after = _json_chars(change.before), _json_chars(change.after)
    if before is None or after is None or (_width(before) <= MAX_SHOWN_VALUE and _width(after) <= MAX_SHOWN_VALUE):
        return _shown(before, 0), _shown(after, 0), ""
    at = next((i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), min(len(before), len(after)))
    start = at
    while start > 0 and _width(before[start - 1 : at]) <= CONTEXT:
        start -= 1
    return _shown(before, start), _shown(after, start), f" (they differ from character {at + 1})"


def shown_value(value: Any) -> str:
    """`value` as JSON, escaped, cut to about MAX_SHOWN_VALUE characters with `...`."""
    return _shown(_json_chars(value), 0)


def _json_chars(value: Any) -> list[str] | None:
    if value is NOT_SET:
        return None
    return _JSON_CHAR.findall(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))


def _width(chars: list[str]) -> int:
    return sum(len(safe(c)) for c in chars)


def _shown(chars: list[str] | None, start: int) -> str:
    """`chars[start:]`, each escaped whole, as many as fit in MAX_SHOWN_VALUE, marked `...` where cut."""
    if chars is None:
        return "(not set)"
    if start == 0 and _width(chars) <= MAX_SHOWN_VALUE:
        return safe("".join(chars))
    shown: list[str] = []
    width = 2 * len(CUT)  # room for a mark at either end
    for char in chars[start:]:
        escaped = safe(char)
        if width + len(escaped) > MAX_SHOWN_VALUE:
            break
        shown.append(escaped)
        width += len(escaped)
    head = CUT if start > 0 else ""
    tail = CUT if start + len(shown) < len(chars) else ""
    return head + "".join(shown) + tail


def safe(text: str) -> str:
    """`text` with every non-printable character (controls, bidi overrides, zero-width ones) escaped.

    An escape has a fixed length (`\\u` and four digits, `\\U` and eight past U+FFFF), so one
    never reads as another followed by a digit.
    """
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
