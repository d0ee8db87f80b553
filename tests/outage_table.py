"""The table "When Redis / PostgreSQL / S3 is down" of docs/deploy.md, read by the tests that check its claims."""

from __future__ import annotations

import functools
import re
from pathlib import Path

DEPLOY_MD = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"
HEADING = "## When Redis / PostgreSQL / S3 is down"


@functools.cache
def outage_table() -> dict[str, dict[str, str]]:
    """Rows by their first cell (lower case, no backticks), each a dict of column header -> cell text."""
    text = DEPLOY_MD.read_text()
    start = text.index(HEADING)
    section = text[start + len(HEADING) :].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0].replace("`", "").lower()] = dict(zip(header, cells, strict=True))
    return rows


def expected_answer(row: str, dependency: str) -> str:
    """The cell of the row whose first cell starts with `row`, in the column naming `dependency`."""
    matches = [cells for name, cells in outage_table().items() if name.startswith(row.lower())]
    assert len(matches) == 1, f"docs/deploy.md's outage table has {len(matches)} rows for {row!r}"
    [column] = [header for header in matches[0] if dependency in header]
    return matches[0][column]


def codes_named() -> set[str]:
    """Every upper-case error code the table names (`SERVICE_UNAVAILABLE`, ...)."""
    return {
        code
        for cells in outage_table().values()
        for cell in cells.values()
        for code in re.findall(r"`([A-Z][A-Z_]+_[A-Z]+)`", cell)
    }
