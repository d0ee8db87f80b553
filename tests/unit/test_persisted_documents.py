"""Persisted and trusted documents (domain/persisted_documents.py, domain/use_cases/persisted_documents.py)
with the in-process store: which text a request runs, and every refusal, with hostile ids generated."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.persisted_documents import (
    BAD_REQUEST,
    NO_TRUSTED_DOCUMENTS,
    NOT_FOUND,
    NOT_SUPPORTED,
    NOT_TRUSTED,
    DocumentRefused,
    DocumentRequest,
    ManifestError,
    document_hash,
    document_request,
    manifest_entries,
    trusted_documents,
)
from domain.use_cases.persisted_documents import DocumentPolicy, register_document, resolve_document
from infrastructure.document_stores import MemoryDocumentStore

QUERY = "query Me { me { id } }"
DIGEST = document_hash(QUERY)
OTHER = "query Models { models { id } }"
APQ = DocumentPolicy(apq_enabled=True, max_document_bytes=1024, trusted_only=False)
NS = "schema-1"


def apq(digest: object, version: object = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


async def resolve(request: DocumentRequest, store: MemoryDocumentStore, **kwargs: Any) -> Any:
    policy = kwargs.pop("policy", APQ)
    trusted = kwargs.pop("trusted", NO_TRUSTED_DOCUMENTS)
    return await resolve_document(request, store=store, trusted=trusted, policy=policy, namespace=NS)


async def test_a_hash_alone_misses_then_the_text_registers_then_the_hash_alone_hits() -> None:
    store = MemoryDocumentStore(10)
    with pytest.raises(DocumentRefused) as miss:
        await resolve(document_request(None, apq(DIGEST), None), store)
    assert (miss.value.code, miss.value.message) == (NOT_FOUND, "PersistedQueryNotFound")

    sent = await resolve(document_request(QUERY, apq(DIGEST), None), store)
    assert sent.register and sent.query == QUERY
    await register_document(sent, store=store, namespace=NS)

    hit = await resolve(document_request("", apq(DIGEST.upper()), None), store)
    assert (hit.query, hit.register) == (QUERY, False)
    # another schema's namespace does not see it
    with pytest.raises(DocumentRefused):
        await resolve_document(
            document_request(None, apq(DIGEST), None),
            store=store,
            trusted=NO_TRUSTED_DOCUMENTS,
            policy=APQ,
            namespace="schema-2",
        )


async def test_a_text_that_does_not_match_its_hash_is_refused() -> None:
    with pytest.raises(DocumentRefused) as refused:
        await resolve(document_request(OTHER, apq(DIGEST), None), MemoryDocumentStore(10))
    assert (refused.value.code, refused.value.message) == (BAD_REQUEST, "provided sha does not match query")


async def test_an_oversized_text_runs_but_is_not_stored() -> None:
    big = "query Big { me { id } }" + " " * 2000
    sent = await resolve(document_request(big, apq(document_hash(big)), None), MemoryDocumentStore(10))
    assert sent.query == big and not sent.register


async def test_disabled_apq_answers_not_supported_and_plain_text_still_runs() -> None:
    off = DocumentPolicy(apq_enabled=False, max_document_bytes=1024, trusted_only=False)
    for query in (None, QUERY):
        with pytest.raises(DocumentRefused) as refused:
            await resolve(document_request(query, apq(DIGEST), None), MemoryDocumentStore(10), policy=off)
        assert refused.value.code == NOT_SUPPORTED
    assert (await resolve(document_request(QUERY, None, None), MemoryDocumentStore(10), policy=off)).query == QUERY


async def test_trusted_only_runs_manifest_documents_by_id_or_text_and_refuses_the_rest() -> None:
    trusted = trusted_documents({DIGEST: QUERY})
    only = DocumentPolicy(apq_enabled=True, max_document_bytes=1024, trusted_only=True)
    store = MemoryDocumentStore(10)
    by_id = await resolve(document_request(None, None, f"sha256:{DIGEST}"), store, policy=only, trusted=trusted)
    by_apq = await resolve(document_request(None, apq(DIGEST), None), store, policy=only, trusted=trusted)
    by_text = await resolve(document_request(QUERY, None, None), store, policy=only, trusted=trusted)
    assert by_id.query == by_apq.query == by_text.query == QUERY
    assert not by_apq.register
    for request in (
        document_request(OTHER, None, None),
        document_request(None, None, None),
        document_request(OTHER, apq(document_hash(OTHER)), None),
        document_request(None, None, document_hash(OTHER)),
    ):
        with pytest.raises(DocumentRefused) as refused:
            await resolve(request, store, policy=only, trusted=trusted)
        assert refused.value.code == NOT_TRUSTED
        assert refused.value.message.startswith("Only trusted documents are accepted")


async def test_a_store_entry_that_is_not_its_ids_text_is_a_miss() -> None:
    store = MemoryDocumentStore(10)
    await store.put(f"{NS}:{DIGEST}", OTHER)
    with pytest.raises(DocumentRefused) as refused:
        await resolve(document_request(None, apq(DIGEST), None), store)
    assert refused.value.code == NOT_FOUND


async def test_the_memory_store_forgets_the_least_recently_used() -> None:
    store = MemoryDocumentStore(2)
    await store.put("a", "1")
    await store.put("b", "2")
    assert await store.get("a") == "1"
    await store.put("c", "3")
    assert (await store.get("b"), await store.get("a"), await store.get("c"), len(store)) == (None, "1", "3", 2)


@given(
    st.one_of(
        st.none(),
        st.text(max_size=80),
        st.integers(),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=10), st.text(max_size=70), max_size=3),
        st.builds(
            apq,
            st.one_of(st.text(max_size=70), st.integers(), st.none()),
            st.one_of(st.integers(), st.text(max_size=3), st.none(), st.booleans()),
        ),
    ),
    st.one_of(st.none(), st.text(max_size=80), st.integers(), st.booleans()),
)
def test_hostile_ids_are_read_or_refused_as_bad_requests(extensions: Any, document_id: Any) -> None:
    try:
        request = document_request(None, extensions, document_id)
    except DocumentRefused as exc:
        assert exc.code == BAD_REQUEST
        return
    if request.digest is not None:
        assert len(request.digest) == 64 and request.digest == request.digest.lower()


def test_manifests_in_both_formats_are_read_and_bad_ones_named() -> None:
    apollo = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{"id": DIGEST, "name": "Me", "type": "query", "body": QUERY}],
    }
    assert trusted_documents(apollo).get(DIGEST) is not None
    assert trusted_documents({DIGEST: QUERY}).get(DIGEST) is not None
    assert manifest_entries({f"sha256:{DIGEST}": QUERY})[0].problem() is None
    for bad, expected in (
        ([], "not a known manifest"),
        ({"format": "other"}, "not a known manifest"),
        ({**apollo, "version": 2}, "version"),
        ({**apollo, "operations": {}}, "must be a list"),
        ({**apollo, "operations": [{"id": DIGEST, "name": "Me", "body": OTHER}]}, "Me"),
        ({DIGEST: OTHER}, "does not match"),
        ({"x": QUERY}, "SHA-256"),
        ({DIGEST: 3}, "non-empty string"),
    ):
        with pytest.raises(ManifestError, match=expected):
            trusted_documents(bad)
