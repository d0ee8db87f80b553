"""Send the SDK's operations by id, for a genhub that accepts only trusted documents.

Written by hand, here only: `make sdk` generates the rest of genhub_client around it, and
the manifest it reads beside it, persisted-query-manifest.json (the SDK's operations, as
sdk/typescript ships it). A server started with `TRUSTED_DOCUMENTS_ONLY=true` and that
manifest runs only its documents; the client's own query text is not one of them (the
manifest holds each body as Apollo Client prints it), so over HTTP each operation is sent
by its manifest id instead, in Apollo's `extensions.persistedQuery`:

    from genhub_client import GenhubClient
    from genhub_client.trusted_documents import TrustedDocumentsHttpClient

    http = TrustedDocumentsHttpClient(headers={"Authorization": f"Bearer {key}"})
    async with GenhubClient(url="https://api.example.com/graphql", http_client=http) as genhub:
        credits = (await genhub.credits()).credits

The answers are the same models (the manifest's bodies only add `__typename`, which they
ignore). Not covered: uploads (multipart) and subscriptions (WebSocket), which still send
the text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import httpx

MANIFEST = "persisted-query-manifest.json"


def manifest_ids(manifest: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Operation name -> document id, from an Apollo persisted query manifest (default: the bundled one)."""
    if manifest is None:
        manifest = json.loads(resources.files(__package__ or "genhub_client").joinpath(MANIFEST).read_text("utf-8"))
    return {str(operation["name"]): str(operation["id"]) for operation in manifest["operations"]}


class TrustedDocumentsHttpClient:
    """The `http_client` of GenhubClient: JSON requests of a manifest operation name carry its id, not its text."""

    def __init__(
        self,
        manifest: Mapping[str, Any] | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.ids = manifest_ids(manifest)
        self.client = client if client is not None else httpx.AsyncClient(headers=headers)

    def body(self, payload: Any) -> Any:
        """The request body to send in place of `payload` (unchanged unless it names a manifest operation)."""
        if not isinstance(payload, dict):
            return payload
        document_id = self.ids.get(str(payload.get("operationName")))
        if document_id is None:
            return payload
        named = {key: value for key, value in payload.items() if key != "query"}
        named["extensions"] = {"persistedQuery": {"version": 1, "sha256Hash": document_id}}
        return named

    async def post(
        self,
        url: Any,
        json: Any | None = None,
        data: Any | None = None,
        files: Any | None = None,
        headers: Any | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if json is not None:
            json = self.body(json)
        return await self.client.post(url, json=json, data=data, files=files, headers=headers, **kwargs)

    async def aclose(self) -> None:
        await self.client.aclose()
