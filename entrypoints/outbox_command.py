"""`genhub outbox list` / `genhub outbox show <id|latest>`: the local outbox development mail goes to.

With SMTP_HOST unset (the embedded default) workers write each message to DATA_DIR/outbox
(infrastructure/mail/outbox.py) instead of sending it; this prints them, e.g. the reset
link of a password reset asked for on `make run`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infrastructure.mail.factory import outbox_of
from infrastructure.settings import Settings


def add_outbox_parser(sub: Any) -> None:
    outbox = sub.add_parser("outbox", help="read the mail written to the local outbox (development, no SMTP_HOST)")
    actions = outbox.add_subparsers(dest="outbox_command", required=True)
    actions.add_parser("list", help="one line per message, newest first")
    show = actions.add_parser("show", help="print one message as it would have been sent")
    show.add_argument("id", help="a message id from `genhub outbox list`, or latest")


def run_outbox(settings: Settings, args: argparse.Namespace) -> int:
    if settings.smtp_host:
        _print(f"mail is sent through {settings.smtp_host} (SMTP_HOST), not written to the outbox")
    outbox = outbox_of(settings)
    if args.outbox_command == "list":
        entries = outbox.entries()
        for entry in reversed(entries):
            _print(f"{entry.id}  {entry.date}  to {entry.to}  {entry.subject}")
        _print(f"{len(entries)} message(s) in {outbox.directory}")
        return 0
    raw = outbox.read(args.id)
    if raw is None:
        _print(f"error: no message {args.id!r} in {outbox.directory}")
        return 2
    sys.stdout.write(raw.decode("utf-8", errors="replace"))
    sys.stdout.flush()
    return 0


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
