"""The signature verifiers of docs/clients.md, as written, against real deliveries of the webhook sender.

The Python block runs in this process; the Node.js block runs in node (tests/fixtures/node_tools.py).
Each judges the same cases: one secret, a rotated secret (two signatures), a tampered body,
a stale and a future timestamp, a foreign secret, a missing header.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from domain.webhooks import new_secret, signed_headers, verify
from infrastructure.webhooks.addresses import parse_networks
from infrastructure.webhooks.destinations import ResolvingDestinations
from infrastructure.webhooks.sender import HttpWebhookSender, build_client
from tests.fixtures.node_tools import NodeTools
from tests.integration.webhook_receivers import Received, answer, receiver

DOC = Path(__file__).resolve().parents[2] / "docs" / "clients.md"
SECTION = "## Webhooks: verifying signatures"
NEW, OLD, FOREIGN = new_secret(), new_secret(), new_secret()


def section_blocks() -> dict[str, str]:
    """The first ```python and ```js block of the section."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else len(text)]
    blocks: dict[str, str] = {}
    for match in re.finditer(r"^```(\w+)\n(.*?)^```$", section, re.S | re.M):
        blocks.setdefault(match.group(1), match.group(2))
    assert {"python", "js"} <= blocks.keys(), blocks.keys()
    return blocks


@dataclass(frozen=True)
class Case:
    name: str
    secret: str
    headers: Mapping[str, str]
    body: bytes
    now: float
    valid: bool


async def deliveries() -> list[Received]:
    """Two real deliveries through the sender: signed with one secret, and with two (a rotation)."""
    destinations = ResolvingDestinations(allow_http=True, allowed_networks=parse_networks(["127.0.0.1/32"]))
    client = build_client(connect_timeout=2.0, timeout=5.0, concurrency=2)
    sender = HttpWebhookSender(client, destinations, timeout_seconds=5.0, max_response_bytes=1024, concurrency=2)
    body = json.dumps({"type": "generation.completed", "timestamp": "2026-12-05T12:00:00Z", "data": {"id": "x"}})
    now = int(time.time())
    try:
        async with receiver(answer(200)) as hook:
            for secrets, message_id in (([OLD], "msg_one"), ([NEW, OLD], "msg_rotated")):
                headers = signed_headers(secrets, message_id, now, body.encode())
                outcome = await sender.send(hook.url(), headers=headers, body=body.encode())
                assert outcome.delivered, outcome
    finally:
        await sender.aclose()
    return hook.requests


def cases(one: Received, rotated: Received) -> list[Case]:
    sent_at = int(one.headers["webhook-timestamp"])
    original_case = dict(rotated.raw_headers)  # names as they came over the wire
    missing = {k: v for k, v in one.headers.items() if k != "webhook-signature"}
    other_version = {**one.headers, "webhook-signature": one.headers["webhook-signature"].replace("v1,", "v2,")}
    other_id = {**one.headers, "webhook-id": "msg_another"}
    return [
        Case("one secret", OLD, one.headers, one.body, sent_at + 1, True),
        Case("rotated, header names as sent", NEW, original_case, rotated.body, sent_at, True),
        Case("rotated: the new secret", NEW, rotated.headers, rotated.body, sent_at, True),
        Case("rotated: the old secret", OLD, rotated.headers, rotated.body, sent_at, True),
        Case("a foreign secret", FOREIGN, rotated.headers, rotated.body, sent_at, False),
        Case("a secret the message was not signed with", NEW, one.headers, one.body, sent_at, False),
        Case("tampered body", OLD, one.headers, one.body.replace(b'"x"', b'"y"'), sent_at, False),
        Case("one byte more", OLD, one.headers, one.body + b" ", sent_at, False),
        Case("stale timestamp", OLD, one.headers, one.body, sent_at + 5 * 60 + 1, False),
        Case("timestamp from the future", OLD, one.headers, one.body, sent_at - 5 * 60 - 1, False),
        Case("at the tolerance's edge", OLD, one.headers, one.body, sent_at + 5 * 60, True),
        Case("no signature header", OLD, missing, one.body, sent_at, False),
        Case("the signature under another version", OLD, other_version, one.body, sent_at, False),
        Case("another message id", OLD, other_id, one.body, sent_at, False),
    ]


@pytest.fixture(scope="module")
async def signed() -> AsyncIterator[list[Case]]:
    one, rotated = await deliveries()
    assert len(rotated.headers["webhook-signature"].split(" ")) == 2
    yield cases(one, rotated)


async def test_the_python_verifier_accepts_exactly_the_genuine_deliveries(signed: list[Case]) -> None:
    # given the documented verifier, run as written
    namespace: dict[str, Any] = {"__name__": "clients_md_verifier"}
    exec(compile(section_blocks()["python"], str(DOC), "exec"), namespace)
    verify_webhook, error = namespace["verify_webhook"], namespace["WebhookVerificationError"]
    for case in signed:
        # when it judges each case
        try:
            verify_webhook(case.secret, case.headers, case.body, now=case.now)
            accepted = True
        except error:
            accepted = False
        # then it accepts the genuine ones only, as genhub's own verifier does
        assert accepted is case.valid, case.name
        lower = {k.lower(): v for k, v in case.headers.items()}
        assert verify(case.secret, lower, case.body, now=int(case.now)) is case.valid, case.name


async def test_the_node_verifier_accepts_exactly_the_genuine_deliveries(
    signed: list[Case], node_tools: NodeTools, tmp_path: Path
) -> None:
    # given the documented verifier in a module, and a harness feeding it every case
    (tmp_path / "verifier.cjs").write_text(section_blocks()["js"], encoding="utf-8")
    (tmp_path / "run.cjs").write_text(
        """
const fs = require("node:fs");
const { verifyWebhook, WebhookVerificationError } = require("./verifier.cjs");
const cases = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const results = cases.map((c) => {
  try {
    verifyWebhook(c.secret, c.headers, Buffer.from(c.body, "base64"), c.now);
    return true;
  } catch (err) {
    if (!(err instanceof WebhookVerificationError)) throw err;
    return false;
  }
});
process.stdout.write(JSON.stringify(results));
""",
        encoding="utf-8",
    )
    payload = [
        {
            "secret": c.secret,
            "headers": dict(c.headers),
            "body": base64.b64encode(c.body).decode(),
            "now": c.now,
        }
        for c in signed
    ]
    (tmp_path / "cases.json").write_text(json.dumps(payload), encoding="utf-8")
    # when node judges them
    done = node_tools.run(tmp_path / "run.cjs", str(tmp_path / "cases.json"), timeout=60)
    assert done.returncode == 0, done.stderr
    # then it accepts the genuine ones only
    results = json.loads(done.stdout)
    assert {c.name: r for c, r in zip(signed, results, strict=True)} == {c.name: c.valid for c in signed}
