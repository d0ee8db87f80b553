"""Every error code a client can see, with what it means (docs/clients.md, "Error codes").

`RESULT_CODES` are `Error.code` values of result-union members (`... on Error { code }`);
where a field's union has no member for one, the same code comes as `errors[].extensions.code`.
`REQUEST_CODES` come only in `errors[].extensions.code`. The `Error` interface's description is
built from both; tests/unit/test_error_codes.py checks them against the codes the code produces.
"""

from __future__ import annotations

from typing import Final

RESULT_CODES: Final[dict[str, str]] = {
    "INVALID_INPUT": "an argument failed validation; `InvalidInput.fields` names each problem",
    "NAME_TAKEN": "an InvalidInput whose name is already another object's (a preset of the same model)",
    "NOT_FOUND": "the object does not exist or is not visible to the viewer (the two look the same)",
    "FORBIDDEN": "the viewer may see the object but not do this with it",
    "ACCOUNT_SUSPENDED": "the account is suspended by an administrator",
    "INVALID_CREDENTIALS": "wrong e-mail or password, or an invalid or used refresh token",
    "EMAIL_TAKEN": "an account with this e-mail already exists",
    "INSUFFICIENT_CREDITS": "the available credits do not cover the cost (`required`, `available`)",
    "RATE_LIMITED": "too many requests; retry after `retryAfterSeconds`",
    "QUOTA_EXCEEDED": "a per-user quota would be exceeded (`limit`)",
    "INVALID_STATE": "the object is not in a state that allows this",
}

REQUEST_CODES: Final[dict[str, str]] = {
    "UNAUTHENTICATED": "no token, or an invalid, expired or revoked one: refresh or sign in",
    "BAD_REQUEST": "the request is malformed (body, variables, operation name, transport)",
    "GRAPHQL_VALIDATION_FAILED": "the document does not parse or validate against the schema, or passes a limit",
    "QUERY_TOO_COSTLY": "the operation's cost is over the limit (`extensions.cost`, `maxCost`): ask for smaller pages",
    "PERSISTED_QUERY_NOT_FOUND": "the persisted query's hash is unknown: send the full text with it",
    "PERSISTED_QUERY_NOT_SUPPORTED": "persisted queries are off on this server",
    "PERSISTED_QUERY_NOT_TRUSTED": "the server accepts only its trusted documents, and this is not one",
    "STORAGE_UNAVAILABLE": "file storage cannot be reached; try again later",
    "SERVICE_UNAVAILABLE": "a dependency is down for a moment: retry after `extensions.retryAfter` "
    "(with `extensions.outcome: UNKNOWN` a write may have been done)",
    "INTERNAL_SERVER_ERROR": "an unexpected error (masked in production); quote `extensions.requestId`",
}

ALL_CODES: Final = {**RESULT_CODES, **REQUEST_CODES}


def error_interface_description() -> str:
    """The description of the `Error` interface: what it is, then every `code` value and its meaning."""
    members = "\n".join(f"- `{code}`: {meaning}" for code, meaning in RESULT_CODES.items())
    others = ", ".join(f"`{code}`" for code in REQUEST_CODES)
    return (
        "An expected failure, returned as a union member instead of an exception. Its `code` is one of:\n"
        f"{members}\n\n"
        f"Only in `errors[].extensions.code`, never here: {others} (docs/clients.md, Error codes)."
    )
