"""docs/deploy.md, the host configs and the client/admin guides only name commands and options that exist.

Every `genhub <command> [--option ...]` written in the deployment files must be
accepted by the real command-line parser (the entrypoint adds `all`), and the
guide must cover each host and topic the deployment promises.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from entrypoints.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT_FILES = [
    REPO / "docs" / "deploy.md",
    REPO / "docs" / "clients.md",
    REPO / "docs" / "catalogue.md",
    REPO / "deploy" / "fly.toml",
    REPO / "deploy" / "render.yaml",
    REPO / "deploy" / "koyeb.md",
    REPO / "docker-compose.yml",
    REPO / "docker" / "entrypoint.sh",
]
ENTRYPOINT_ONLY = {"all"}
# Not after a path or URL character: ".../genhub scripts/backup.sh" names no command.
COMMAND = re.compile(r"(?<![\w/:@.-])genhub ([a-z][a-z-]*)((?: --[a-z][a-z-]*(?:[ =](?!--)\S+)?)*)")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _code_fragments(path: Path) -> list[str]:
    """Where commands are written: `inline code` anywhere, fenced blocks in Markdown,
    and the non-comment lines of configuration files and scripts (prose says
    "genhub talks to ...", which is no command)."""
    text = path.read_text()
    fragments = re.findall(r"`([^`\n]+)`", text)
    if path.suffix == ".md":
        fragments += re.findall(r"^```\w*\n(.*?)^```", text, re.S | re.M)
    else:
        fragments += [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return fragments


def _mentions() -> list[tuple[str, str, list[str]]]:
    found = []
    for path in DEPLOYMENT_FILES:
        for match in (m for fragment in _code_fragments(path) for m in COMMAND.finditer(fragment)):
            options = re.findall(r"--[a-z][a-z-]*", match.group(2))
            found.append((path.relative_to(REPO).as_posix(), match.group(1), options))
    return found


def test_commands_are_found_in_the_deployment_files() -> None:
    commands = {command for _, command, _ in _mentions()}
    assert commands >= {"serve", "worker", "scheduler", "migrate", "create-admin"}


@pytest.mark.parametrize(("where", "command", "options"), _mentions())
def test_every_genhub_command_mentioned_exists(where: str, command: str, options: list[str]) -> None:
    subparsers = _subparsers()
    if command in ENTRYPOINT_ONLY:
        assert f"    {command})" in (REPO / "docker" / "entrypoint.sh").read_text()
        return
    assert command in subparsers, f"{where}: genhub {command}"
    known = {flag for action in subparsers[command]._actions for flag in action.option_strings}
    for option in options:
        assert option in known, f"{where}: genhub {command} {option}"


def test_the_guide_covers_every_host_and_topic() -> None:
    text = (REPO / "docs" / "deploy.md").read_text()
    headings = set(re.findall(r"^## (.+)$", text, re.M))
    assert headings >= {
        "Configuration and secrets",
        "VPS with Docker Compose",
        "Fly.io",
        "Render",
        "Koyeb",
        "Object storage",
        "Scaling",
        "Backups",
        "Rollback",
    }
    for needle in (
        "--profile proxy",
        "TLS",
        "Cloudflare R2",
        "MinIO",
        "exactly one",
        "scripts/backup.sh",
        "scripts/restore.sh",
        "versioning",
        "lifecycle",
        "genhub migrate --downgrade",
    ):
        assert needle in text, needle
