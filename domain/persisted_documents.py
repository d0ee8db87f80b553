"""Persisted and trusted GraphQL documents: how a request names a document, and a manifest of trusted ones.

Two ways of naming a document instead of (or beside) sending its text:
- Apollo's automatic persisted queries: `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`;
- the GraphQL-over-HTTP persisted documents proposal: `documentId = "sha256:<hex>"` (a bare hex digest too).

A document's id is the SHA-256 of its UTF-8 text, so ids are content-addressed: a stored
text is only ever the one its id names. The two trusted-document manifest formats read
here are Apollo's persisted query manifest and graphql-codegen client preset's
`persisted-documents.json`. Pure: no I/O (infrastructure/trusted_documents.py reads files).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

APQ_VERSION: Final = 1
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
APOLLO_MANIFEST_FORMAT: Final = "apollo-persisted-query-manifest"

# Error codes a client sees in `errors[].extensions.code`; the first two are Apollo's, which
# its PersistedQueryLink acts on (retry with the full text; stop sending hashes).
NOT_FOUND: Final = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED: Final = "PERSISTED_QUERY_NOT_SUPPORTED"
NOT_TRUSTED: Final = "PERSISTED_QUERY_NOT_TRUSTED"
BAD_REQUEST: Final = "BAD_REQUEST"


def document_hash(text: str) -> str:
    """The document id: lower-case hex SHA-256 of the text's UTF-8 bytes (lone surrogates kept, never raised on)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class DocumentStore(Protocol):
    """Documents registered by clients (automatic persisted queries), by key; bounded, may forget.

    A store that cannot be reached answers `get` with None and drops `put`: the client then
    sends the full text again, which always works.
    """

    async def get(self, key: str) -> str | None: ...
    async def put(self, key: str, text: str) -> None: ...


class DocumentRefused(Exception):
    """A request whose document cannot be had or is not allowed; `code` is what the client sees."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found() -> DocumentRefused:
    # The message is the one Apollo's link also matches on (older links match the message only).
    return DocumentRefused(NOT_FOUND, "PersistedQueryNotFound")


def not_supported() -> DocumentRefused:
    return DocumentRefused(NOT_SUPPORTED, "PersistedQueryNotSupported")


def not_trusted(detail: str) -> DocumentRefused:
    return DocumentRefused(NOT_TRUSTED, f"Only trusted documents are accepted: {detail}")


def bad_request(message: str) -> DocumentRefused:
    return DocumentRefused(BAD_REQUEST, message)


@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """What a request says about its document: the text (None or "": not sent), and the id it names, if any."""

    query: str | None
    digest: str | None
    #: True when the id came from `extensions.persistedQuery` (Apollo's protocol), not `documentId`.
    apq: bool = False


def names_document(extensions: object, document_id: object) -> bool:
    """Whether a request names its document by id (it may then leave the text out)."""
    return document_id is not None or (isinstance(extensions, Mapping) and "persistedQuery" in extensions)


def _digest(value: object, what: str) -> str:
    if not isinstance(value, str) or not _HEX_DIGEST.fullmatch(value.lower()):
        raise bad_request(f"{what} must be a SHA-256 digest: 64 hexadecimal characters.")
    return value.lower()


def document_request(query: str | None, extensions: object, document_id: object) -> DocumentRequest:
    """Read the document's id from `extensions.persistedQuery` or `documentId` (hostile values refused)."""
    persisted = extensions.get("persistedQuery") if isinstance(extensions, Mapping) else None
    if persisted is not None:
        if document_id is not None:
            raise bad_request("Name the document once: `documentId` or `extensions.persistedQuery`, not both.")
        if not isinstance(persisted, Mapping):
            raise bad_request("`extensions.persistedQuery` must be an object.")
        version = persisted.get("version")
        if type(version) is not int or version != APQ_VERSION:
            raise bad_request(f"Unsupported persisted query version: only version {APQ_VERSION} is supported.")
        return DocumentRequest(query, _digest(persisted.get("sha256Hash"), "`persistedQuery.sha256Hash`"), apq=True)
    if document_id is not None:
        if not isinstance(document_id, str):
            raise bad_request("`documentId` must be a string.")
        bare = document_id[len("sha256:") :] if document_id.startswith("sha256:") else document_id
        return DocumentRequest(query, _digest(bare, "`documentId` (sha256:<hex>)"))
    return DocumentRequest(query, None)


class ManifestError(ValueError):
    """A trusted-documents manifest that cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    digest: str
    body: str
    name: str | None = None
    kind: str | None = None  # query, mutation, subscription (Apollo's manifest says)


@dataclass(frozen=True, slots=True)
class TrustedDocuments:
    """The trusted documents by id (empty: no manifest configured)."""

    by_digest: Mapping[str, TrustedDocument]

    def get(self, digest: str) -> TrustedDocument | None:
        return self.by_digest.get(digest)

    def __len__(self) -> int:
        return len(self.by_digest)


NO_TRUSTED_DOCUMENTS: Final = TrustedDocuments({})


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One operation of a manifest as written, before its id is checked (`genhub documents check` reports each)."""

    key: str  # the id as written
    body: object
    name: str | None = None
    kind: str | None = None

    def problem(self) -> str | None:
        """Why this entry cannot be trusted as written (its schema validity is the graph layer's question)."""
        if not isinstance(self.body, str) or not self.body.strip():
            return "the body must be a non-empty string"
        normal = self.key[len("sha256:") :] if self.key.startswith("sha256:") else self.key
        if not _HEX_DIGEST.fullmatch(normal.lower()):
            return "the id must be a SHA-256 digest (64 hexadecimal characters)"
        if normal.lower() != document_hash(self.body):
            return f"the id does not match the body's SHA-256 ({document_hash(self.body)})"
        return None


def manifest_entries(data: Any) -> list[ManifestEntry]:
    """The operations of a decoded manifest in either format, detected from its shape."""
    if isinstance(data, Mapping) and data.get("format") == APOLLO_MANIFEST_FORMAT:
        if data.get("version") != 1:
            raise ManifestError(f"unsupported {APOLLO_MANIFEST_FORMAT} version {data.get('version')!r} (1 is)")
        operations = data.get("operations")
        if not isinstance(operations, list):
            raise ManifestError("`operations` must be a list")
        entries = []
        for index, operation in enumerate(operations):
            if not isinstance(operation, Mapping) or not isinstance(operation.get("id"), str):
                raise ManifestError(f"operation #{index} must be an object with a string `id`")
            name, kind = operation.get("name"), operation.get("type")
            entries.append(
                ManifestEntry(
                    operation["id"],
                    operation.get("body"),
                    name if isinstance(name, str) else None,
                    kind if isinstance(kind, str) else None,
                )
            )
        return entries
    if isinstance(data, Mapping) and "format" not in data:
        # graphql-codegen client preset: {"<sha256>": "<document>"} (its default hash, sha256)
        return [ManifestEntry(str(key), body) for key, body in data.items()]
    raise ManifestError(
        f'not a known manifest: expected {{"format": "{APOLLO_MANIFEST_FORMAT}", ...}} '
        'or graphql-codegen\'s {"<sha256>": "<document>"}'
    )


def trusted_documents(data: Any) -> TrustedDocuments:
    """The trusted documents of a decoded manifest, or ManifestError naming the first bad entry."""
    by_digest: dict[str, TrustedDocument] = {}
    for entry in manifest_entries(data):
        problem = entry.problem()
        if problem is not None:
            label = f"{entry.name} ({entry.key})" if entry.name else entry.key
            raise ManifestError(f"operation {label[:120]}: {problem}")
        assert isinstance(entry.body, str)
        digest = document_hash(entry.body)
        by_digest[digest] = TrustedDocument(digest, entry.body, entry.name, entry.kind)
    return TrustedDocuments(by_digest)
