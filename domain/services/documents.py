"""Persisted and trusted documents bound to their store, manifest and policy (domain/use_cases/persisted_documents.py)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.persisted_documents import DocumentRequest, DocumentStore, TrustedDocuments
from domain.use_cases.persisted_documents import (
    DocumentPolicy,
    ResolvedDocument,
    register_document,
    resolve_document,
)


@dataclass(frozen=True, slots=True)
class Documents:
    store: DocumentStore
    trusted: TrustedDocuments
    policy: DocumentPolicy

    async def resolve(self, request: DocumentRequest, *, namespace: str) -> ResolvedDocument:
        return await resolve_document(
            request, store=self.store, trusted=self.trusted, policy=self.policy, namespace=namespace
        )

    async def register(self, document: ResolvedDocument, *, namespace: str) -> None:
        await register_document(document, store=self.store, namespace=namespace)
