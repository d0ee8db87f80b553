"""Which document a request runs: its text, one named by id (a persisted query, a trusted document), or a refusal.

`resolve_document` decides from the request alone (and one store read); a text the client
sent with its id is only stored by `register_document` after the GraphQL layer has judged
it (parses, validates, within the limits) and the client's registration rate allows it.
Keys are `{namespace}:{digest}`: the namespace names the schema, so after a deploy that
changes the schema, texts registered against the old one are not served (clients register again).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.persisted_documents import (
    DocumentRequest,
    DocumentStore,
    TrustedDocuments,
    bad_request,
    document_hash,
    not_found,
    not_supported,
    not_trusted,
)


@dataclass(frozen=True, slots=True)
class DocumentPolicy:
    apq_enabled: bool
    #: Larger texts are run but never stored (the store's bound is per document and in count).
    max_document_bytes: int
    #: Only documents of the trusted manifest run (ad-hoc text and APQ registration are refused).
    trusted_only: bool


@dataclass(frozen=True, slots=True)
class ResolvedDocument:
    query: str
    digest: str | None = None
    #: The client sent the text with its id and the store may not have it: store it once judged.
    register: bool = False


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


async def resolve_document(
    request: DocumentRequest,
    *,
    store: DocumentStore,
    trusted: TrustedDocuments,
    policy: DocumentPolicy,
    namespace: str,
) -> ResolvedDocument:
    """The text to run, or DocumentRefused (NOT_FOUND, NOT_SUPPORTED, NOT_TRUSTED or BAD_REQUEST)."""
    query = request.query or None
    if request.digest is None:
        if policy.trusted_only and (query is None or trusted.get(document_hash(query)) is None):
            raise not_trusted("send a document of the manifest by its id (extensions.persistedQuery or documentId).")
        return ResolvedDocument(query or "")
    digest = request.digest
    if query is not None and document_hash(query) != digest:
        raise bad_request("provided sha does not match query")
    known = trusted.get(digest)
    if known is not None:
        return ResolvedDocument(known.body, digest)
    if policy.trusted_only:
        raise not_trusted(f"no trusted document has the id {digest}.")
    if not policy.apq_enabled:
        raise not_supported()
    if query is not None:
        return ResolvedDocument(query, digest, register=_utf8_size(query) <= policy.max_document_bytes)
    stored = await store.get(f"{namespace}:{digest}")
    if stored is None or document_hash(stored) != digest:  # a store is content-addressed: anything else is junk
        raise not_found()
    return ResolvedDocument(stored, digest)


async def register_document(document: ResolvedDocument, *, store: DocumentStore, namespace: str) -> None:
    """Store a judged text under its id (only texts `resolve_document` marked to register)."""
    if document.register and document.digest is not None:
        await store.put(f"{namespace}:{document.digest}", document.query)
