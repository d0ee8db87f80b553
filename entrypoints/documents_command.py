"""`genhub documents check MANIFEST [--json]`: is every operation of a trusted-documents manifest usable?

Each operation is checked as the server would at start and at request time: its id is the
SHA-256 of its body (domain/persisted_documents.py), and the body parses and validates
against this build's schema within the configured limits (depth, tokens, aliases, cost,
introspection), through the same operation plans requests use. Exit status: 0 when every
operation passes, 1 when any fails (each is reported), 2 when the manifest cannot be read.
Names and messages from the file are printed with control characters escaped.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.persisted_documents import ManifestEntry, ManifestError, manifest_entries
from entrypoints.catalogue_command import safe
from infrastructure.settings import Settings
from infrastructure.trusted_documents import read_manifest


@dataclass(frozen=True, slots=True)
class Verdict:
    id: str
    name: str | None
    problems: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "ok": not self.problems, "problems": self.problems}


def add_documents_parser(sub: Any) -> None:
    documents = sub.add_parser("documents", help="check a trusted-documents manifest against the schema")
    actions = documents.add_subparsers(dest="documents_command", required=True)
    check = actions.add_parser("check", help="validate every operation of MANIFEST (ids and schema)")
    check.add_argument(
        "manifest", metavar="MANIFEST", help="Apollo's persisted query manifest or persisted-documents.json"
    )
    check.add_argument("--json", action="store_true", help="print one JSON report instead of lines")


def check_entries(settings: Settings, entries: list[ManifestEntry]) -> list[Verdict]:
    from graph.limits import query_limits
    from graph.schema import build_schema

    schema = build_schema(limits=query_limits(settings), mask_errors=False)
    verdicts = []
    for entry in entries:
        problem = entry.problem()
        problems = [problem] if problem else []
        if isinstance(entry.body, str) and entry.body.strip():
            plan = schema.plans.get(entry.body)
            problems += [error.message for error in plan.errors]
            if plan.document is not None and not plan.operations:
                problems.append("the body holds no operation")
        verdicts.append(Verdict(entry.key, entry.name, problems))
    return verdicts


def run_documents(settings: Settings, args: argparse.Namespace) -> int:
    path = Path(args.manifest)
    try:
        entries = manifest_entries(read_manifest(path))
    except ManifestError as exc:
        _report_unreadable(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}", as_json=args.json)
        return 2
    verdicts = check_entries(settings, entries)
    failed = [v for v in verdicts if v.problems]
    if args.json:
        report = {"manifest": str(path), "ok": not failed, "operations": [v.as_json() for v in verdicts]}
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        for verdict in verdicts:
            label = safe(f"{verdict.name} ({verdict.id})" if verdict.name else verdict.id)
            if not verdict.problems:
                _print(f"ok     {label}")
            for problem in verdict.problems:
                _print(f"error  {label}: {safe(problem)}")
        _print(
            f"{len(verdicts) - len(failed)} of {len(verdicts)} operations pass"
            + (f", {len(failed)} fail" if failed else "")
        )
    return 1 if failed else 0


def _report_unreadable(message: str, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"ok": False, "error": message}) + "\n")
    else:
        _print(f"error: {safe(message)}")


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
