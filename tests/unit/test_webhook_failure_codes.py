"""`WebhookDelivery.lastFailure`'s description names every code a delivery may store, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from domain.webhook_messages import SETTLE_FAILURES
from domain.webhooks import DeliveryFailure
from graph.schema import build_schema

STORED = {f.value for f in DeliveryFailure} | set(SETTLE_FAILURES)


def listed(description: str) -> set[str]:
    return set(re.findall(r"\b[A-Z][A-Z_]{2,}\b", description.split(":", 1)[1]))


def test_the_description_lists_exactly_the_codes_written() -> None:
    field = build_schema().graphql_schema.get_type("WebhookDelivery").fields["lastFailure"]  # type: ignore[union-attr]
    assert listed(field.description or "") == STORED


def test_the_client_docs_name_every_code() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "clients.md").read_text()
    section = docs[docs.index("`lastFailure` says why") :][:900]
    assert {code for code in STORED if f"`{code}`" in section} == STORED
    assert "RESPONSE_TOO_LARGE" not in docs
