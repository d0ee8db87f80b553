"""Typed domain errors: expected failures that the API turns into schema types.

Tree::

    DomainError
    ├── NotFound(entity)
    ├── Forbidden
    │   └── AccountSuspended
    ├── InvalidInput(fields: list[FieldProblem])
    │   ├── NameTaken(field, message)
    │   └── ObjectTooLarge
    ├── InvalidCredentials
    ├── EmailTaken
    ├── InsufficientCredits(required, available)
    ├── RateLimited(retry_after_seconds)
    ├── QuotaExceeded(limit)
    ├── InvalidState
    ├── Unauthenticated
    ├── StorageUnavailable
    └── ServiceUnavailable(dependency, retry_after_seconds)
        └── OutcomeUnknown: a write was sent, its reply lost

ProviderTaskTaken(provider, external_id) is no DomainError: another generation holds that provider
task, a conflict the workers settle among themselves and no client ever sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    message: str


class DomainError(Exception):
    """Base of every expected failure; `code` is stable and machine-readable."""

    code = "ERROR"
    default_message = "The request failed."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class NotFound(DomainError):
    code = "NOT_FOUND"
    default_message = "The object does not exist or is not visible to you."

    def __init__(self, entity: str = "object", message: str | None = None) -> None:
        self.entity = entity
        super().__init__(message or f"{entity} not found.")


class Forbidden(DomainError):
    code = "FORBIDDEN"
    default_message = "You are not allowed to do this."


class AccountSuspended(Forbidden):
    code = "ACCOUNT_SUSPENDED"
    default_message = "This account is suspended: it cannot sign in. Contact the operator."


class InvalidInput(DomainError):
    code = "INVALID_INPUT"
    default_message = "The input is invalid."

    def __init__(self, fields: list[FieldProblem] | None = None, message: str | None = None) -> None:
        self.fields = list(fields or [])
        if message is None and self.fields:
            message = "; ".join(f"{p.field}: {p.message}" for p in self.fields)
        super().__init__(message)

    @classmethod
    def single(cls, field_name: str, message: str) -> InvalidInput:
        return cls([FieldProblem(field_name, message)])


class InvalidCredentials(DomainError):
    code = "INVALID_CREDENTIALS"
    default_message = "The e-mail or password is wrong."


class EmailTaken(DomainError):
    code = "EMAIL_TAKEN"
    default_message = "An account with this e-mail already exists."


class InsufficientCredits(DomainError):
    code = "INSUFFICIENT_CREDITS"

    def __init__(self, required: int, available: int) -> None:
        self.required = required
        self.available = available
        super().__init__(f"This needs {required} credits; {available} are available.")


class RateLimited(DomainError):
    code = "RATE_LIMITED"

    def __init__(self, retry_after_seconds: int) -> None:
        self.retry_after_seconds = max(1, retry_after_seconds)
        super().__init__(f"Too many requests; retry in {self.retry_after_seconds} s.")


class QuotaExceeded(DomainError):
    code = "QUOTA_EXCEEDED"

    def __init__(self, limit: int, message: str | None = None) -> None:
        self.limit = limit
        super().__init__(message or f"Quota of {limit} exceeded.")


class InvalidState(DomainError):
    code = "INVALID_STATE"
    default_message = "The object is not in a state that allows this."


class ProviderTaskTaken(Exception):
    """A provider task id is recorded for another generation: one job never serves two generations.

    Internal to the workers (submission, adoption), never a client's answer: not a DomainError,
    so it has no code in the API; were it to escape, it would be an internal error."""

    def __init__(self, provider: str, external_id: str) -> None:
        self.provider, self.external_id = provider, external_id
        super().__init__(f"{provider} task {external_id[:64]!r} belongs to another generation.")


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    default_message = "Authentication is required or the token is invalid."


class StorageUnavailable(DomainError):
    code = "STORAGE_UNAVAILABLE"
    default_message = "File storage is unavailable; try again later."


class ServiceUnavailable(DomainError):
    """A dependency (the database, Redis) could not be reached before the failing step sent anything
    to it; the same request may be retried. (`OutcomeUnknown`, a subclass: the step's write may
    have been done.)

    `dependency` names it for the logs and metrics; clients see the code and the retry hint only.
    """

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, dependency: str, retry_after_seconds: int = 5) -> None:
        self.dependency = dependency
        self.retry_after_seconds = max(1, retry_after_seconds)
        super().__init__(self._text())

    def _text(self) -> str:
        return f"The service is temporarily unavailable; retry in {self.retry_after_seconds} s."


class OutcomeUnknown(ServiceUnavailable):
    """The connection broke after a write was sent and whether it took effect could not be found out.

    The same code as ServiceUnavailable (a client that only knows that code waits and retries),
    with `outcome` "UNKNOWN" in the error's extensions: the write may have been done, so a retry
    must carry the same idempotencyKey, or the client reads its state (history, credits) first.
    """

    outcome = "UNKNOWN"

    def _text(self) -> str:
        return (
            "The connection broke before the service could tell whether this was done: check your "
            "history before sending it again, or resend it with the same idempotencyKey "
            f"(in {self.retry_after_seconds} s)."
        )


@dataclass(slots=True)
class Problems:
    """Collects field problems so one InvalidInput reports all of them at once."""

    items: list[FieldProblem] = field(default_factory=list)

    def add(self, field_name: str, message: str) -> None:
        self.items.append(FieldProblem(field_name, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidInput(self.items)


class ObjectTooLarge(InvalidInput):
    """An upload went past the size limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(message=f"The file is larger than the limit of {limit} bytes.")
        self.fields = [FieldProblem("file", f"must be at most {limit} bytes")]


class NameTaken(InvalidInput):
    """The name is already another object's (a preset of the same model); the API answers InvalidInput on that field."""

    code = "NAME_TAKEN"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__([FieldProblem(field_name, message)])
