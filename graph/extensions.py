"""The error policy: codes, masking, logging with the request id."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError

from domain.errors import DomainError, OutcomeUnknown, RateLimited, ServiceUnavailable
from infrastructure.outages import UNKNOWN, as_unavailable, log_outage

log = logging.getLogger("genhub.graphql")
INTERNAL = "INTERNAL_SERVER_ERROR"


#: graphql-core's hints (" Did you mean 'generation'?", "... the enum value 'X'?", "... to use an
#: inline fragment on 'T'?"): names are [_A-Za-z0-9], so a hint never holds a question mark.
SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def classify(error: GraphQLError, *, mask: bool, request_id: str, hide_suggestions: bool = False) -> GraphQLError:
    """Give every error an `extensions.code`; hide unexpected ones when masking.

    With `hide_suggestions` (production: introspection off), a client's mistake is reported
    without graphql-core's "Did you mean" hints, which would spell out the schema a guess
    at a time. Validation and execution are asked to omit them; this is the net for every
    other path (subscriptions' variable coercion, for one).
    """
    original = error.original_error
    extensions = dict(error.extensions or {})
    extensions.setdefault("requestId", request_id)
    # The net under the adapters: an outage that reached here untranslated is still one.
    unavailable = None if isinstance(original, DomainError | GraphQLError | None) else as_unavailable(original, UNKNOWN)
    if unavailable is not None and original is not None:
        log_outage(unavailable, original)  # with the traceback when the server is not known
        original = unavailable
    if isinstance(original, DomainError):
        extensions["code"] = original.code
        if isinstance(original, ServiceUnavailable | RateLimited):
            extensions["retryAfter"] = original.retry_after_seconds
        if isinstance(original, OutcomeUnknown):  # the write may have been done: see docs/clients.md
            extensions["outcome"] = original.outcome
        return GraphQLError(
            original.message, error.nodes, error.source, error.positions, error.path, original, extensions
        )
    if original is None or isinstance(original, GraphQLError) or not error.path:
        # Parse, validation and variable-coercion errors (graphql-core wraps a coercion
        # failure in another GraphQLError): the client's mistake, shown as is. Only errors
        # raised while resolving a field (they have a path) can be ours.
        extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED" if error.locations else "BAD_REQUEST")
        message = SUGGESTION.sub("", error.message) if hide_suggestions else error.message
        return GraphQLError(message, error.nodes, error.source, error.positions, error.path, None, extensions)
    log.error(
        "unexpected error in %s",
        ".".join(str(p) for p in error.path or []) or "operation",
        exc_info=(type(original), original, original.__traceback__),
        extra={"request_id": request_id},
    )
    extensions["code"] = INTERNAL
    message = "Unexpected error." if mask else error.message
    return GraphQLError(message, error.nodes, error.source, error.positions, error.path, original, extensions)


@dataclass(frozen=True, slots=True)
class ErrorPolicy:
    """`classify` with one schema's settings, for every operation (HTTP and WebSocket alike)."""

    mask: bool = True
    hide_suggestions: bool = False

    def apply(self, errors: list[GraphQLError] | None, context: Any) -> list[GraphQLError] | None:
        """The errors as the client sees them (None when there are none)."""
        if not errors:
            return None
        request_id = getattr(context, "request_id", "-")
        return [
            classify(e, mask=self.mask, request_id=request_id, hide_suggestions=self.hide_suggestions) for e in errors
        ]
