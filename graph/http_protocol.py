"""GraphQL-over-HTTP request parsing and response media types (graphql.github.io/graphql-over-http).

Pure functions over already-read request data; graph/http.py wires them to FastAPI. JSON is
decoded by `infrastructure.json_input.loads` (nesting depth, NaN and number limits), as
WebSocket frames are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from domain.persisted_documents import names_document
from infrastructure.json_input import JsonInputError
from infrastructure.json_input import loads as loads  # graph/http.py decodes multipart fields with it

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON_TYPE = "application/json"
EVENT_STREAM = "text/event-stream"
MULTIPART_MIXED = "multipart/mixed"  # incremental delivery: not served (graph/incremental_delivery.py)


class HttpProblem(Exception):
    """A request the server cannot execute; carries the HTTP status to answer with."""

    def __init__(
        self, status: int, message: str, *, headers: dict[str, str] | None = None, code: str = "BAD_REQUEST"
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.code = code


@dataclass(slots=True)
class GraphQLParams:
    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    extensions: dict[str, Any] | None = field(default=None)
    #: The GraphQL-over-HTTP persisted documents proposal's `documentId` (graph/persisted_documents.py).
    document_id: Any = None


def media_type(content_type: str) -> str:
    """The media type of a Content-Type value: lower case, without its parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def _accept_entries(accept: str) -> Iterator[tuple[int, str, float]]:
    """Each media range of an Accept header: its position, lower-cased media type and q (0 when unreadable)."""
    for position, part in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        yield position, media.lower(), q


def negotiate(accept: str | None) -> str:
    """Pick the response media type; graphql-response+json wins when acceptable (spec 6.4.1)."""
    if not accept:
        return JSON_TYPE
    best: tuple[float, int, str] | None = None
    for _position, media, q in _accept_entries(accept):
        if q <= 0:
            continue
        if media == GRAPHQL_RESPONSE:
            candidate = (q, 1, GRAPHQL_RESPONSE)
        elif media in (JSON_TYPE, "application/*", "*/*"):
            candidate = (q, 0, JSON_TYPE)
        else:
            continue
        # Higher q first; on a tie prefer graphql-response+json; position is only a last resort.
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is None:
        wanted = f"send Accept: {GRAPHQL_RESPONSE} or {JSON_TYPE}."
        if MULTIPART_MIXED in accept.lower():  # an incremental delivery client (@defer/@stream)
            wanted = f"responses are never multipart (@defer and @stream are not supported); {wanted}"
        raise HttpProblem(406, f"Not acceptable: {wanted}")
    return best[2]


def wants_event_stream(accept: str | None) -> bool:
    """True when the client asks for `text/event-stream` (GraphQL over SSE, graph/sse.py) over any JSON type.

    The graphql-sse client and `EventSource` send exactly `text/event-stream`; a list that
    prefers a JSON type (a higher q, or the same q listed first) keeps the plain answer.
    """
    if not accept or EVENT_STREAM not in accept.lower():
        return False
    best: tuple[float, int, bool] | None = None
    for position, media, q in _accept_entries(accept):
        if not 0 < q <= 1 or media not in (EVENT_STREAM, GRAPHQL_RESPONSE, JSON_TYPE):  # (NaN fails too)
            continue
        candidate = (q, -position, media == EVENT_STREAM)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best is not None and best[2]


def params_from_mapping(data: Any) -> GraphQLParams:
    if not isinstance(data, dict):
        raise HttpProblem(400, "The request body must be a JSON object (or a batch array of them).")
    query = data.get("query")
    extensions = data.get("extensions")
    document_id = data.get("documentId")
    if query is None:
        if not names_document(extensions, document_id):
            raise HttpProblem(400, "No GraphQL query found in the request.")
        query = ""  # the text comes from the id (persisted queries, trusted documents)
    if not isinstance(query, str):
        raise HttpProblem(400, "`query` must be a string.")
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise HttpProblem(400, "`variables` must be an object.")
    operation_name = data.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise HttpProblem(400, "`operationName` must be a string.")
    if extensions is not None and not isinstance(extensions, dict):
        raise HttpProblem(400, "`extensions` must be an object.")
    return GraphQLParams(query, variables, operation_name, extensions, document_id)


def params_from_query_string(args: dict[str, str]) -> GraphQLParams:
    raw: dict[str, Any] = {
        "query": args.get("query"),
        "operationName": args.get("operationName"),
        "documentId": args.get("documentId"),
    }
    for key in ("variables", "extensions"):
        if args.get(key):
            try:
                raw[key] = loads(args[key])
            except JsonInputError as exc:
                raise HttpProblem(400, f"`{key}` is not valid JSON.") from exc
    return params_from_mapping(raw)


def parse_json_body(body: bytes, *, max_batch: int) -> list[GraphQLParams] | GraphQLParams:
    try:
        data = loads(body)
    except JsonInputError as exc:
        raise HttpProblem(400, "The request body is not valid JSON.") from exc
    if isinstance(data, list):
        if not data:
            raise HttpProblem(400, "An empty batch has nothing to execute.")
        if len(data) > max_batch:
            raise HttpProblem(400, f"A batch may hold at most {max_batch} operations.")
        return [params_from_mapping(item) for item in data]
    return params_from_mapping(data)


def place_files(operations: Any, files_map: Any, files: dict[str, Any]) -> Any:
    """Put uploaded files where the multipart `map` says (GraphQL multipart request spec)."""
    if not isinstance(files_map, dict):
        raise HttpProblem(400, "The multipart `map` must be an object.")
    for name, paths in files_map.items():
        if name not in files:
            raise HttpProblem(400, f"File `{name}` named in `map` is missing.")
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise HttpProblem(400, "Each `map` entry must be a list of paths.")
        for path in paths:
            keys = path.split(".")
            target = operations
            try:
                for key in keys[:-1]:
                    target = target[int(key)] if isinstance(target, list) else target[key]
                last = keys[-1]
                if isinstance(target, list):
                    target[int(last)] = files[name]
                elif isinstance(target, dict) and last in target:
                    target[last] = files[name]
                else:
                    raise KeyError(last)
            except (KeyError, IndexError, ValueError, TypeError) as exc:
                raise HttpProblem(400, f"The `map` path `{path}` does not exist in `operations`.") from exc
    return operations
