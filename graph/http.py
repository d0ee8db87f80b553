"""GraphQL over HTTP: GET (queries only) and POST (JSON, batches, multipart uploads) at /graphql."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from graphql import GraphQLError, OperationType
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType as StrawberryOperationType

from domain.persisted_documents import DocumentRefused
from domain.use_cases.persisted_documents import ResolvedDocument
from graph import persisted_documents as documents
from graph.client_address import client_address
from graph.compiled_reads import RawJSON
from graph.context import Context, Credentials
from graph.execution import operations_by_name
from graph.http_bodies import multipart_params, read_body
from graph.http_protocol import (
    GRAPHQL_RESPONSE,
    JSON_TYPE,
    GraphQLParams,
    HttpProblem,
    media_type,
    negotiate,
    params_from_query_string,
    parse_json_body,
    wants_event_stream,
)
from graph.ide import graphiql_page
from graph.request_id import request_id_of
from graph.schema import GenhubSchema
from infrastructure.bootstrap import Services
from infrastructure.settings import Settings

log = logging.getLogger("genhub.http")
JSON_BODY_TYPES = frozenset({JSON_TYPE, GRAPHQL_RESPONSE, "application/graphql+json"})


class Answer(NamedTuple):
    """A complete HTTP answer to a GraphQL request, before it is encoded."""

    status: int
    payload: Any
    media: str
    headers: dict[str, str] | None = None


def problem(exc: HttpProblem, media: str, request: Request) -> Answer:
    """The refusal as a GraphQL error, with the code and request id every error carries (docs/clients.md)."""
    extensions = {"code": exc.code, "requestId": request_id_of(request)}
    payload = {"errors": [{"message": exc.message, "extensions": extensions}]}
    return Answer(exc.status, payload, media if exc.status != 406 else JSON_TYPE, exc.headers or None)


SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


def retry_after(payload: Any) -> int | None:
    """The longest `retryAfter` of the SERVICE_UNAVAILABLE errors in an answer (a batch's too), or None."""
    items = payload if isinstance(payload, list) else [payload]
    hints = [
        int(extensions.get("retryAfter") or 1)
        for item in items
        if isinstance(item, dict)
        for error in item.get("errors") or ()
        if isinstance(extensions := error.get("extensions"), dict) and extensions.get("code") == SERVICE_UNAVAILABLE
    ]
    return max(hints) if hints else None


def headers_of(answer: Answer) -> dict[str, str]:
    """The answer's headers; `Retry-After` when a dependency was down (the status stays 200, docs/clients.md)."""
    headers = dict(answer.headers or {})
    if (seconds := retry_after(answer.payload)) is not None:
        headers["Retry-After"] = str(seconds)
    return headers


def encode(payload: Any) -> bytes:
    """The JSON body; a compiled read's `data` (RawJSON, already JSON text) is written in as it is."""
    if isinstance(payload, list):
        return b"[" + b",".join(encode(item) for item in payload) + b"]"
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, RawJSON):
        rest = {key: value for key, value in payload.items() if key != "data"}
        tail = b"," + encode(rest)[1:] if rest else b"}"
        return b'{"data":' + data.encode() + tail
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


#: GET parameters that make a request an operation rather than a visit to GraphiQL.
SENT_PARAMS = frozenset({"query", "extensions", "documentId"})
QUERIES_ONLY = frozenset({StrawberryOperationType.QUERY})


def bearer_token(request_headers: Any) -> str | None:
    value: str | None = request_headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else value.strip()


UNPARSED = "unparsed"  # the document does not parse: execution reports the syntax error


def operation_type(schema: GenhubSchema, params: GraphQLParams) -> OperationType | str | None:
    """The selected operation's type; None when the document names no such (single) operation.

    Read from the operation plan that execution uses next (one parse, one cache).
    """
    document = schema.plans.get(params.query).document
    if document is None:
        return UNPARSED
    operation = operations_by_name(document).get(params.operation_name)
    return operation.operation if operation else None


def no_such_operation(operation_name: str | None) -> GraphQLError:
    if operation_name is None:
        message = "The document has several operations: name the one to run in `operationName`."
    else:
        message = f"Unknown operation named '{operation_name}'."
    return GraphQLError(message, extensions={"code": "BAD_REQUEST"})


class DocumentProblem(HttpProblem):
    """A refused persisted or trusted document: in a batch, that operation's answer only."""


async def named_document(
    services: Services, schema: GenhubSchema, params: GraphQLParams
) -> tuple[GraphQLParams, ResolvedDocument | None]:
    """The params with the text the request names by id (persisted query, trusted document); None: nothing named."""
    if not documents.needs_resolving(services, params.extensions, params.document_id):
        return params, None
    try:
        document = await documents.resolve(services, schema, params.query, params.extensions, params.document_id)
    except DocumentRefused as exc:
        raise DocumentProblem(documents.STATUS.get(exc.code, 400), exc.message, code=exc.code) from None
    return dataclasses.replace(params, query=document.query), document


class GraphQLHttp:
    def __init__(self, schema: GenhubSchema, settings: Settings) -> None:
        self.schema = schema
        self.settings = settings
        documents.schema_namespace(schema)  # printed once now, not during a first request

    def context(self, request: Request, params: GraphQLParams) -> Context:
        ctx = Context(
            services=request.app.state.services,
            credentials=Credentials(bearer_token(request.headers)),
            request_id=request_id_of(request),
            client_ip=client_address(request, self.settings.trusted_proxy_hops),
            operation_name=params.operation_name,
            raw_answers=True,
        )
        ctx.request = request
        return ctx

    async def execute(
        self, request: Request, params: GraphQLParams, media: str, *, via_get: bool
    ) -> tuple[int, dict[str, Any]]:
        params, document = await named_document(request.app.state.services, self.schema, params)
        op_type = operation_type(self.schema, params) if params.query else UNPARSED
        if op_type is None:  # several operations and no name, or no operation by that name
            return (400 if media == GRAPHQL_RESPONSE else 200), {
                "errors": [no_such_operation(params.operation_name).formatted]
            }
        if op_type is OperationType.SUBSCRIPTION:
            raise HttpProblem(
                400,
                "Subscriptions are served over WebSocket at /graphql (graphql-transport-ws) "
                "or as Server-Sent Events (send `Accept: text/event-stream`).",
            )
        if via_get and op_type is not OperationType.QUERY and op_type is not UNPARSED:
            raise HttpProblem(405, "Only queries may be sent with GET; use POST.", headers={"Allow": "POST"})
        started = time.perf_counter()
        context = self.context(request, params)
        if document is not None and document.register:
            await documents.register(context.services, self.schema, document, context.client_ip)
        try:
            result = await self.schema.execute(
                params.query,
                variable_values=params.variables,
                context_value=context,
                operation_name=params.operation_name,
                allowed_operation_types=QUERIES_ONLY if via_get else None,
                operation_extensions=params.extensions,
            )
        except MissingQueryError as exc:  # an empty `query` string
            raise HttpProblem(400, "No GraphQL query found in the request.") from exc
        except InvalidOperationTypeError as exc:  # (GET was checked above; this is the executor's own check)
            raise HttpProblem(405, "Only queries may be sent with GET; use POST.", headers={"Allow": "POST"}) from exc
        except CannotGetOperationTypeError:
            error = no_such_operation(params.operation_name)
            return (400 if media == GRAPHQL_RESPONSE else 200), {"errors": [error.formatted]}
        payload: dict[str, Any] = {}
        errors = result.errors or []
        request_error = result.data is None and bool(errors) and all(not e.path for e in errors)
        if not request_error:
            payload["data"] = result.data
        if result.errors:
            payload["errors"] = [_format(e) for e in result.errors]
        status = 400 if request_error and media == GRAPHQL_RESPONSE else 200
        hook = getattr(request.app.state, "observe_operation", None)  # State keeps attributes in `_state`
        if hook is not None:
            hook(context, params, result, time.perf_counter() - started)
        return status, payload

    async def batch_item(self, request: Request, params: GraphQLParams, media: str) -> Any:
        try:
            _, payload = await self.execute(request, params, media, via_get=False)
        except DocumentProblem as exc:
            return problem(exc, media, request).payload
        return payload

    async def post_json(self, request: Request) -> Answer:
        """A POST whose body is JSON (one operation or a batch), answered in full."""
        try:
            media = negotiate(request.headers.get("accept"))
        except HttpProblem as exc:
            return problem(exc, JSON_TYPE, request)
        try:
            parsed = parse_json_body(
                await read_body(request, self.settings.max_body_bytes), max_batch=self.settings.max_batch_size
            )
            if isinstance(parsed, list):
                payloads = [await self.batch_item(request, p, media) for p in parsed]
                return Answer(200, payloads, media)
            status, payload = await self.execute(request, parsed, media, via_get=False)
        except HttpProblem as exc:
            return problem(exc, media, request)
        return Answer(status, payload, media)


def _format(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    return formatted


def _response(answer: Answer) -> Response:
    return Response(
        encode(answer.payload),
        status_code=answer.status,
        media_type=f"{answer.media}; charset=utf-8",
        headers=headers_of(answer),
    )


def _problem(exc: HttpProblem, media: str, request: Request) -> Response:
    return _response(problem(exc, media, request))


def build_router(handler: GraphQLHttp, event_stream: Callable[[Request], Response] | None = None) -> APIRouter:
    """`event_stream`: the answer to a GET asking for `text/event-stream` (graph/sse.py)."""
    settings = handler.settings
    router = APIRouter()

    @router.get("/graphql", include_in_schema=False)
    async def graphql_get(request: Request) -> Response:
        accept = request.headers.get("accept", "")
        if event_stream is not None and wants_event_stream(accept):
            return event_stream(request)
        if settings.graphiql_enabled and "text/html" in accept and not SENT_PARAMS & request.query_params.keys():
            return HTMLResponse(graphiql_page(settings))
        try:
            media = negotiate(accept)
        except HttpProblem as exc:
            return _problem(exc, JSON_TYPE, request)
        try:
            params = params_from_query_string(dict(request.query_params))
            status, payload = await handler.execute(request, params, media, via_get=True)
        except HttpProblem as exc:
            return _problem(exc, media, request)
        return _response(Answer(status, payload, media))

    @router.post("/graphql", include_in_schema=False)
    async def graphql_post(request: Request) -> Response:
        """Multipart uploads and refusals; JSON bodies normally take `GraphQLEndpoint` before routing."""
        content_type = media_type(request.headers.get("content-type", ""))
        if content_type in JSON_BODY_TYPES:
            return _response(await handler.post_json(request))
        try:
            media = negotiate(request.headers.get("accept"))
        except HttpProblem as exc:
            return _problem(exc, JSON_TYPE, request)
        try:
            if content_type != "multipart/form-data":
                raise HttpProblem(
                    415, "Send GraphQL requests as application/json (or multipart/form-data for uploads)."
                )
            params = await multipart_params(request, settings.upload_max_bytes)
            status, payload = await handler.execute(request, params, media, via_get=False)
        except HttpProblem as exc:
            return _problem(exc, media, request)
        finally:
            form = getattr(request.state, "form", None)
            if form is not None:
                await form.close()
        return _response(Answer(status, payload, media))

    @router.api_route("/graphql", methods=["PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def graphql_other(request: Request) -> Response:
        return _problem(
            HttpProblem(405, "GraphQL is served over GET and POST.", headers={"Allow": "GET, POST"}), JSON_TYPE, request
        )

    return router
