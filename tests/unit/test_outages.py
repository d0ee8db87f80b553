"""What counts as an outage, how the rate limits behave while Redis is down, and how the edge answers one."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import asyncpg
import pytest
from graphql import GraphQLError
from prometheus_client import REGISTRY
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

from domain import errors
from domain.errors import NotFound, OutcomeUnknown, RateLimited, ServiceUnavailable
from domain.ports import RateBucket
from graph.extensions import classify
from graph.http import Answer, headers_of, retry_after
from infrastructure.outages import DATABASE, REDIS, UNKNOWN, as_unavailable, dependency_down, translating
from infrastructure.ratelimit_fallback import FallbackRateLimiter
from infrastructure.settings import Settings
from tests.outage_table import codes_named


def wrapped(driver_error: BaseException) -> sa_errors.DBAPIError:
    """A driver error as SQLAlchemy raises it: a DBAPIError whose `orig` holds the adapted error."""
    adapted = Exception(str(driver_error))
    adapted.__cause__ = driver_error
    return sa_errors.DBAPIError("SELECT 1", None, adapted)


@pytest.mark.parametrize(
    ("error", "dependency"),
    [
        (asyncpg.CannotConnectNowError("the database system is shutting down"), DATABASE),
        (asyncpg.TooManyConnectionsError("too many clients"), DATABASE),
        (asyncpg.AdminShutdownError("terminating connection"), DATABASE),
        (asyncpg.ConnectionDoesNotExistError("closed in the middle of operation"), DATABASE),
        (wrapped(asyncpg.ConnectionDoesNotExistError("closed")), DATABASE),
        (wrapped(asyncpg.CannotConnectNowError("starting up")), DATABASE),
        (sa_errors.TimeoutError("QueuePool limit reached"), DATABASE),
        (asyncpg.InterfaceError("connection is closed"), DATABASE),
        (redis_errors.ConnectionError("Connection refused"), REDIS),
        (redis_errors.TimeoutError("Timeout reading from socket"), REDIS),
        (ConnectionRefusedError(111, "Connect call failed"), UNKNOWN),
        (TimeoutError(), UNKNOWN),
    ],
)
def test_connection_failures_are_outages(error: BaseException, dependency: str) -> None:
    assert dependency_down(error) == dependency


@pytest.mark.parametrize(
    "error",
    [
        wrapped(asyncpg.UniqueViolationError("duplicate key")),
        sa_errors.IntegrityError("INSERT", None, Exception("duplicate key")),
        wrapped(asyncpg.PostgresSyntaxError("syntax error")),
        redis_errors.ResponseError("WRONGTYPE"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        FileNotFoundError("no such file"),
        ValueError("bad value"),
        NotFound("generation"),
    ],
)
def test_other_errors_are_not_outages(error: BaseException) -> None:
    assert dependency_down(error) is None
    assert as_unavailable(error, DATABASE) is None


def test_translating_names_the_dependency_and_keeps_the_cause() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed")
    with pytest.raises(ServiceUnavailable) as caught, translating(DATABASE):
        raise refused
    assert caught.value.dependency == DATABASE
    assert caught.value.code == "SERVICE_UNAVAILABLE"
    assert caught.value.retry_after_seconds >= 1
    assert caught.value.__cause__ is refused


def test_translating_leaves_other_errors_alone() -> None:
    with pytest.raises(KeyError), translating(DATABASE):
        raise KeyError("x")
    with pytest.raises(NotFound), translating(REDIS):
        raise NotFound("chunk")


def test_an_error_raised_while_handling_an_outage_is_not_one(caplog: pytest.LogCaptureFixture) -> None:
    # given a bug raised inside an `except ConnectionError` block (its __context__ is the outage)
    def buggy() -> None:
        try:
            raise redis_errors.ConnectionError("refused")
        except redis_errors.ConnectionError:
            int("not a number")  # the bug

    with pytest.raises(ValueError) as caught:
        buggy()
    assert isinstance(caught.value.__context__, redis_errors.ConnectionError)
    # then it is no outage: not translated, and at the edge an unexpected error with its traceback
    assert dependency_down(caught.value) is None
    with pytest.raises(ValueError), translating(REDIS):
        buggy()
    caplog.set_level(logging.WARNING)
    shown = classify(GraphQLError("x", path=["generate"], original_error=caught.value), mask=True, request_id="r")
    assert shown.extensions is not None and shown.extensions["code"] == "INTERNAL_SERVER_ERROR"
    assert [r.exc_info is not None for r in caplog.records] == [True]
    # while one raised `from` the outage still is one
    explicit = RuntimeError("queue unavailable")
    explicit.__cause__ = redis_errors.ConnectionError("refused")
    assert dependency_down(explicit) == REDIS


def test_an_outage_of_an_unknown_server_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    # given a bare network error at the edge, and a known server's outage
    bare = GraphQLError("x", path=["credits"], original_error=ConnectionResetError(104, "reset by peer"))
    known = GraphQLError("x", path=["credits"], original_error=redis_errors.ConnectionError("refused"))
    # when both are answered
    for error in (bare, known):
        shown = classify(error, mask=True, request_id="r")
        assert shown.extensions is not None and shown.extensions["code"] == "SERVICE_UNAVAILABLE"
    # then the bare one is logged with its traceback, the known one as one line
    assert [(r.levelname, r.exc_info is not None) for r in caplog.records] == [("WARNING", True), ("WARNING", False)]


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (asyncpg.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.TooManyConnectionsError("too many clients"), True),
        (sa_errors.TimeoutError("QueuePool limit reached"), True),
        (asyncpg.InterfaceError("connection is closed"), True),
        (wrapped(asyncpg.TooManyConnectionsError("too many clients")), True),
        (asyncpg.ConnectionDoesNotExistError("closed in the middle of operation"), False),
        (wrapped(asyncpg.ConnectionDoesNotExistError("closed")), False),
        (asyncpg.AdminShutdownError("terminating connection"), False),
        (ConnectionResetError(104, "reset by peer"), False),
    ],
)
def test_a_write_whose_reply_is_lost_has_an_unknown_outcome(error: BaseException, refused: bool) -> None:
    # when a block that sends a write meets the outage
    with pytest.raises(ServiceUnavailable) as caught, translating(DATABASE, sends_write=True):
        raise error
    # then only a failure before anything was sent says "nothing was done"
    assert isinstance(caught.value, OutcomeUnknown) is not refused
    assert caught.value.code == "SERVICE_UNAVAILABLE"
    shown = classify(GraphQLError("x", path=["generate"], original_error=caught.value), mask=True, request_id="r")
    assert shown.extensions is not None
    assert shown.extensions.get("outcome") == (None if refused else "UNKNOWN")
    assert shown.extensions["retryAfter"] >= 1


class FlakyRedis:
    """A RateLimiter that raises `error` while `down` (as RedisRateLimiter does when Redis is gone)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.down = False
        self.hits = 0

    async def hit(self, bucket: str, *, limit: int, window_seconds: int) -> int:
        return await self.hit_all([RateBucket(bucket, limit, window_seconds)])

    async def hit_all(self, buckets: Sequence[RateBucket]) -> int:
        if self.down:
            raise self.error
        self.hits += 1
        return 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rate_limits_are_counted_in_process_while_redis_is_down() -> None:
    # given a limiter on a Redis that goes away
    redis, clock = FlakyRedis(redis_errors.ConnectionError("refused")), Clock()
    limiter = FallbackRateLimiter(redis, clock=clock, retry_after=1.0)
    bucket = [RateBucket("login:ip:10.0.0.7", 2, 60)]
    redis.down = True
    counted_before = REGISTRY.get_sample_value("genhub_rate_limit_fallbacks_total") or 0.0
    # when one address tries three times, then the limit still holds: neither refused outright nor lifted
    assert [await limiter.hit_all(bucket) for _ in range(3)][:2] == [0, 0]
    assert await limiter.hit_all(bucket) > 0
    # and every hit counted in process shows in the metric
    assert REGISTRY.get_sample_value("genhub_rate_limit_fallbacks_total") == counted_before + 4
    # when Redis is back, the next hit after the retry pause is counted there again
    redis.down = False
    clock.now += 0.5
    await limiter.hit_all(bucket)
    assert redis.hits == 0  # still within the pause: Redis is not asked on every hit
    clock.now += 1.0
    assert await limiter.hit_all(bucket) == 0
    assert redis.hits == 1


async def test_a_limiter_error_that_is_no_outage_is_raised() -> None:
    redis = FlakyRedis(redis_errors.ResponseError("NOSCRIPT and worse"))
    redis.down = True
    with pytest.raises(redis_errors.ResponseError):
        await FallbackRateLimiter(redis).hit_all([RateBucket("generate:u", 1, 60)])


def test_the_edge_gives_the_code_and_the_retry_hint() -> None:
    # given an outage that reached a resolver untranslated, and one the adapters translated
    raw = GraphQLError("boom", path=["credits"], original_error=redis_errors.ConnectionError("refused"))
    typed = GraphQLError("x", path=["me"], original_error=ServiceUnavailable(DATABASE, 7))
    # then both are SERVICE_UNAVAILABLE with retryAfter, never INTERNAL_SERVER_ERROR
    for error, seconds in ((raw, 5), (typed, 7)):
        shown = classify(error, mask=True, request_id="r-1")
        assert shown.extensions is not None
        assert shown.extensions["code"] == "SERVICE_UNAVAILABLE"
        assert shown.extensions["retryAfter"] == seconds
        assert "retry in" in shown.message
    limited = classify(GraphQLError("x", path=["login"], original_error=RateLimited(3)), mask=True, request_id="r")
    assert limited.extensions is not None and limited.extensions["retryAfter"] == 3


def test_retry_after_header_is_the_longest_hint_of_the_answer() -> None:
    unavailable = {"message": "m", "extensions": {"code": "SERVICE_UNAVAILABLE", "retryAfter": 5}}
    other = {"message": "m", "extensions": {"code": "RATE_LIMITED", "retryAfter": 30}}
    assert retry_after({"data": None, "errors": [unavailable, other]}) == 5
    assert (
        retry_after(
            [{"data": {}}, {"errors": [{**unavailable, "extensions": {**unavailable["extensions"], "retryAfter": 9}}]}]
        )
        == 9
    )
    assert retry_after({"data": {"me": None}}) is None
    assert headers_of(Answer(200, {"errors": [unavailable]}, "application/json", {"X-A": "1"})) == {
        "X-A": "1",
        "Retry-After": "5",
    }
    assert headers_of(Answer(200, {"data": {}}, "application/json")) == {}


def test_the_outage_table_names_only_codes_and_settings_that_exist() -> None:
    known = {cls.code for cls in vars(errors).values() if isinstance(cls, type) and hasattr(cls, "code")}
    variables = {name.upper() for name in Settings.model_fields}
    named = codes_named()
    assert {"SERVICE_UNAVAILABLE", "STORAGE_UNAVAILABLE"} <= named
    assert named - variables <= known
