"""The `Error` interface, every expected-failure type of the contract, and PageInfo."""

from __future__ import annotations

import strawberry

from graph.error_codes import error_interface_description


@strawberry.interface(description=error_interface_description())
class Error:
    code: str = strawberry.field(
        description="Stable machine-readable code, e.g. NOT_FOUND: the Error interface lists them."
    )
    message: str = strawberry.field(description="Human-readable explanation.")


@strawberry.type(description="One problem with one input field.")
class FieldError:
    field: str
    message: str


@strawberry.type(description="The input failed validation; `fields` names each problem.")
class InvalidInput(Error):
    fields: list[FieldError]


@strawberry.type(description="The object does not exist or is not visible to the viewer.")
class NotFound(Error):
    pass


@strawberry.type(description="The viewer may see the object but not do this with it.")
class Forbidden(Error):
    pass


@strawberry.type(description="The account is suspended by an administrator: it cannot sign in or refresh.")
class AccountSuspended(Error):
    pass


@strawberry.type(description="The e-mail/password pair or the refresh token is not valid.")
class InvalidCredentials(Error):
    pass


@strawberry.type(description="An account with this e-mail already exists.")
class EmailTaken(Error):
    pass


@strawberry.type(description="The available credits do not cover the cost.")
class InsufficientCredits(Error):
    required: int
    available: int


@strawberry.type(description="Too many requests; retry after the given number of seconds.")
class RateLimited(Error):
    retry_after_seconds: int


@strawberry.type(description="A per-user quota would be exceeded.")
class QuotaExceeded(Error):
    limit: int


@strawberry.type(description="The object is not in a state that allows this operation.")
class InvalidState(Error):
    pass


@strawberry.type(
    description=(
        "Relay-style page information. A forward page (`first`) tells `hasNextPage` and answers "
        "`hasPreviousPage` false; a backward page (`last`) tells `hasPreviousPage` and answers "
        "`hasNextPage` false (as the Relay specification allows: telling both would take a second read)."
    )
)
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="Paging forward: more items follow this page (ask again with `after: endCursor`)."
    )
    end_cursor: str | None = strawberry.field(description="The cursor of the page's last edge; null when empty.")
    has_previous_page: bool = strawberry.field(
        default=False,
        description="Paging backward: more items precede this page (ask again with `before: startCursor`).",
    )
    start_cursor: str | None = strawberry.field(
        default=None, description="The cursor of the page's first edge; null when empty."
    )
