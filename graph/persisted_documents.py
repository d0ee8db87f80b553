"""Persisted queries and trusted documents at the transports: a request's text from the id it names.

HTTP (graph/http.py) and WebSocket (graph/websocket.py) both ask `resolve` for the text to
run, then, once the operation is accepted by the transport's own rules (GET runs queries
only), `register` a text the client sent with its id: it is stored only when it parses,
validates and is within the limits (its plan has no errors), and within the client
address's registration rate, so the store cannot be filled with junk. A registration
over the rate still runs; it is just not stored.
"""

from __future__ import annotations

import functools
import hashlib
import logging

from graphql import GraphQLFormattedError

from domain.errors import RateLimited
from domain.persisted_documents import (
    NOT_FOUND,
    NOT_SUPPORTED,
    NOT_TRUSTED,
    DocumentRefused,
    DocumentRequest,
    document_request,
    names_document,
)
from domain.ports import RateBucket
from domain.use_cases.persisted_documents import ResolvedDocument
from graph.schema import GenhubSchema
from graph.throttle import address_key
from infrastructure.bootstrap import Services
from infrastructure.metrics import PERSISTED_DOCUMENTS

log = logging.getLogger("genhub.documents")
REGISTER_ACTION = "apq-register"
#: The HTTP status of each refusal: Apollo's two protocol answers are 200 (its link reads the body).
STATUS = {NOT_FOUND: 200, NOT_SUPPORTED: 200}
OUTCOMES = {NOT_FOUND: "miss", NOT_SUPPORTED: "unsupported", NOT_TRUSTED: "untrusted"}


@functools.lru_cache(maxsize=8)
def schema_namespace(schema: GenhubSchema) -> str:
    """Names the schema in store keys: a deploy that changes the schema does not serve texts judged by the old one."""
    return hashlib.sha256(schema.as_str().encode()).hexdigest()[:16]


def needs_resolving(services: Services, extensions: object, document_id: object) -> bool:
    """False for the common request (text only, any text allowed): nothing to look up."""
    return services.documents.policy.trusted_only or names_document(extensions, document_id)


async def resolve(
    services: Services, schema: GenhubSchema, query: str | None, extensions: object, document_id: object
) -> ResolvedDocument:
    """The text to run; DocumentRefused (its `code` and message for the client) otherwise."""
    try:
        request: DocumentRequest = document_request(query, extensions, document_id)
        document = await services.documents.resolve(request, namespace=schema_namespace(schema))
    except DocumentRefused as exc:
        PERSISTED_DOCUMENTS.labels(OUTCOMES.get(exc.code, "invalid")).inc()
        raise
    if document.digest is not None and not request.query:
        PERSISTED_DOCUMENTS.labels("hit").inc()
    return document


async def register(services: Services, schema: GenhubSchema, document: ResolvedDocument, client_ip: str) -> bool:
    """Store a text sent with its id when its plan is clean and the address may register; True when stored."""
    if not document.register:
        return False
    plan = schema.plans.get(document.query)
    if plan.errors or plan.document is None:
        PERSISTED_DOCUMENTS.labels("not_stored").inc()
        return False
    settings = services.settings
    buckets = [
        RateBucket(
            f"{REGISTER_ACTION}:ip:{address_key(client_ip)}",
            settings.rate_limit_persisted_register,
            settings.rate_limit_window_seconds,
        ),
        RateBucket(
            f"{REGISTER_ACTION}:all", settings.rate_limit_persisted_register_global, settings.rate_limit_window_seconds
        ),
    ]
    try:
        await services.throttle.hit(buckets)
    except RateLimited:
        log.info("persisted query registration over the rate for %s: run, not stored", client_ip)
        PERSISTED_DOCUMENTS.labels("not_stored").inc()
        return False
    await services.documents.register(document, namespace=schema_namespace(schema))
    PERSISTED_DOCUMENTS.labels("registered").inc()
    return True


def refusal_error(code: str, message: str) -> GraphQLFormattedError:
    return {"message": message, "extensions": {"code": code}}


async def fill_payload(
    services: Services, schema: GenhubSchema, payload: object, client_ip: str
) -> GraphQLFormattedError | None:
    """A WebSocket subscribe/start payload's text put in `query` when it names a document by id.

    None when there was nothing to do; otherwise the formatted error to send for the operation
    (the payload stays as it was). The text of a payload is registered as over HTTP.
    """
    if not isinstance(payload, dict):
        return None  # the frame check (graph/ws_frames.py) refuses it
    extensions, document_id = payload.get("extensions"), payload.get("documentId")
    if not needs_resolving(services, extensions, document_id):
        return None
    query = payload.get("query")
    try:
        document = await resolve(services, schema, query if isinstance(query, str) else None, extensions, document_id)
    except DocumentRefused as exc:
        return refusal_error(exc.code, exc.message)
    payload["query"] = document.query
    await register(services, schema, document, client_ip)
    return None


def report_trusted_documents(services: Services, schema: GenhubSchema) -> None:
    """At start: how many trusted documents there are, and a warning naming each this schema refuses.

    Not a refusal to start: a manifest may hold operations of clients still deployed while the
    schema moved on (they fail as any invalid document would); `genhub documents check` is the gate.
    """
    trusted = services.documents.trusted
    if not len(trusted):
        return
    refused = [doc for doc in trusted.by_digest.values() if schema.plans.get(doc.body).errors]
    log.info("trusted documents: %d loaded, %d invalid against this schema", len(trusted), len(refused))
    for doc in refused[:20]:
        errors = schema.plans.get(doc.body).errors
        log.warning("trusted document %s (%s) is invalid: %s", doc.name or "-", doc.digest, errors[0].message)
