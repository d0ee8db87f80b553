"""The one place where domain errors become GraphQL error types.

graph/boundary.py answers a resolver's DomainError with the type returned here when the
field's result union has it as a member; otherwise the error propagates and the error
policy (graph/extensions.py) gives it its code.
"""

from __future__ import annotations

from domain import errors as de
from graph.common import types as gt


def to_graphql(exc: de.DomainError) -> gt.Error | None:
    """The schema's error type for `exc`, or None when no result union can carry it (Unauthenticated...)."""
    code, message = exc.code, exc.message
    if isinstance(exc, de.InvalidInput):
        return gt.InvalidInput(
            code=code, message=message, fields=[gt.FieldError(field=p.field, message=p.message) for p in exc.fields]
        )
    if isinstance(exc, de.InsufficientCredits):
        return gt.InsufficientCredits(code=code, message=message, required=exc.required, available=exc.available)
    if isinstance(exc, de.RateLimited):
        return gt.RateLimited(code=code, message=message, retry_after_seconds=exc.retry_after_seconds)
    if isinstance(exc, de.QuotaExceeded):
        return gt.QuotaExceeded(code=code, message=message, limit=exc.limit)
    simple: dict[type[de.DomainError], type[gt.Error]] = {
        de.NotFound: gt.NotFound,
        de.AccountSuspended: gt.AccountSuspended,  # before Forbidden, its base
        de.Forbidden: gt.Forbidden,
        de.InvalidCredentials: gt.InvalidCredentials,
        de.EmailTaken: gt.EmailTaken,
        de.InvalidState: gt.InvalidState,
    }
    for domain_type, graph_type in simple.items():
        if isinstance(exc, domain_type):
            return graph_type(code=code, message=message)
    return None
