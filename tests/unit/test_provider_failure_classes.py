"""What a provider's failure proves about a job there (`ProviderError.nothing_started`, `our_config`): the failover rule."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.ports import ProviderError
from domain.use_cases.routed_submission import counts_as_up, fails_over
from infrastructure.providers import fal_wire, kie_wire, replicate_wire
from infrastructure.providers.http import transport_error

REQUEST = httpx.Request("POST", "https://provider.invalid/submit")


@pytest.mark.parametrize(
    ("exc", "started_maybe"),
    [
        (httpx.ConnectError("refused", request=REQUEST), False),
        (httpx.ConnectTimeout("no connection", request=REQUEST), False),
        (httpx.PoolTimeout("no free connection", request=REQUEST), False),
        (httpx.ReadTimeout("no answer", request=REQUEST), True),
        (httpx.WriteTimeout("half sent", request=REQUEST), True),
        (httpx.RemoteProtocolError("dropped", request=REQUEST), True),
        (httpx.ReadError("reset", request=REQUEST), True),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_only_a_connection_never_made_fails_over(exc: httpx.TransportError, started_maybe: bool) -> None:
    error = transport_error(exc, "submit")
    assert error.retryable
    assert fails_over(error) is not started_maybe
    assert not counts_as_up(error)


def errors_for(status: int) -> list[ProviderError]:
    return [
        fal_wire.error_for_status(status, None),
        kie_wire.error_for_code(status, ""),
        replicate_wire.error_for_answer(status, None, {}),
    ]


@pytest.mark.parametrize("status", [402, 429, 503, 455])
def test_refusals_before_a_job_fail_over_and_count_against_the_circuit(status: int) -> None:
    for error in errors_for(status):
        if error.retryable:  # fal and Replicate do not know 455 as maintenance
            assert fails_over(error) and not counts_as_up(error), error


@pytest.mark.parametrize("status", [401, 403, 404])
def test_our_wrong_credentials_or_route_fail_over_and_count_against_the_circuit(status: int) -> None:
    for error in errors_for(status):
        assert (error.our_config, fails_over(error), counts_as_up(error)) == (True, True, False), error


@pytest.mark.parametrize("status", [500, 503, 521, 522, 599])
def test_a_server_error_the_provider_answered_fails_over_and_counts_against_the_circuit(status: int) -> None:
    # The provider answered that the request failed (issue #23: 5xx is among the failures before any
    # work started), or a gateway never reached it (521, 522).
    for error in errors_for(status):
        assert error.retryable and fails_over(error) and not counts_as_up(error), error


@pytest.mark.parametrize("status", [502, 504, 520, 524])
def test_a_gateway_answering_for_a_provider_that_got_the_request_does_not_fail_over(status: int) -> None:
    # a bad gateway or a gateway timeout: the provider may have made the job and its answer was lost
    for error in errors_for(status):
        assert error.retryable and not fails_over(error) and not counts_as_up(error), error


@pytest.mark.parametrize("status", [400, 422])
def test_a_permanent_refusal_of_the_request_does_not_fail_over_and_the_provider_is_up(status: int) -> None:
    for error in errors_for(status):
        assert not fails_over(error) and counts_as_up(error), error


@given(st.integers(min_value=100, max_value=999))
def test_any_status_fails_over_only_when_it_proves_no_job(status: int) -> None:
    proves_nothing_started = status in {401, 403, 404, 402, 429, 455} or (
        500 <= status <= 599 and status not in {502, 504, 520, 524}
    )
    for error in errors_for(status):
        if fails_over(error):
            assert proves_nothing_started, (status, error)
        assert error.nothing_started is proves_nothing_started
