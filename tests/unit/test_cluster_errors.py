"""The API edge's decisions, without a server: which error an answer is, what Retry-After says, and how
long the one retry policy waits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from moor.cluster import client
from moor.cluster.errors import (
    ApiError,
    ApiTimeout,
    ApiUnreachable,
    Conflict,
    Forbidden,
    Gone,
    MalformedResponse,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)
from moor.errors import MoorError
from moor.retry import RetryPolicy, parse_retry_after


def status_body(code: int, reason: str, message: str, **details: object) -> bytes:
    document = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason}
    return json.dumps({**document, "message": message, "details": details}).encode()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ApiError),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (410, Gone),
        (422, ApiError),
        (429, TooManyRequests),
        (500, ServerError),
        (503, ServerError),
        (504, ServerError),
    ],
)
def test_the_class_is_chosen_from_the_status(status: int, kind: type[ApiError]) -> None:
    error = ApiError.from_response(status, status_body(status, "Reason", "what happened"))
    assert type(error) is kind
    assert isinstance(error, MoorError)
    assert (error.status, error.reason, str(error)) == (status, "Reason", "what happened")


def test_the_old_properties_still_answer() -> None:
    not_found = ApiError.from_response(404, status_body(404, "NotFound", 'syncs.moor.dev "x" not found'))
    assert not_found.not_found and not not_found.conflict and not not_found.gone
    assert ApiError.from_response(409, b"").conflict
    assert ApiError.from_response(410, b"").gone
    assert ApiError.of(410, "Expired", "too old").gone, "a watch's ERROR event becomes the same class"
    assert isinstance(ApiError.of(410, "Expired", "too old"), Gone)


def test_causes_come_from_a_status_body() -> None:
    causes = [{"reason": "FieldValueInvalid", "field": "spec.replicas", "message": "must be >= 0"}]
    error = ApiError.from_response(422, status_body(422, "Invalid", "Deployment is invalid", causes=causes))
    assert error.causes == causes


def test_a_body_that_is_not_a_status_is_quoted_not_trusted() -> None:
    error = ApiError.from_response(502, b"<html>Bad Gateway</html>")
    assert isinstance(error, ServerError)
    assert error.reason == ""
    assert str(error) == "the API server answered 502: <html>Bad Gateway</html>"
    impostor = ApiError.from_response(403, json.dumps({"kind": "Pod", "reason": "Trust me"}).encode())
    assert impostor.reason == "" and "Trust me" in str(impostor)


def test_a_status_without_a_message_still_says_what_happened() -> None:
    assert str(ApiError.from_response(429, status_body(429, "TooManyRequests", ""))) == (
        "the API server answered 429 TooManyRequests"
    )


def test_retry_after_comes_from_the_header_or_else_the_status_details() -> None:
    throttled = ApiError.from_response(429, status_body(429, "TooManyRequests", "slow down"), {"Retry-After": "3"})
    assert isinstance(throttled, TooManyRequests) and throttled.retry_after == 3.0
    from_details = ApiError.from_response(429, status_body(429, "TooManyRequests", "x", retryAfterSeconds=5))
    assert from_details.retry_after == 5.0
    assert ApiError.from_response(429, b"").retry_after is None


def test_retry_after_parsing() -> None:
    now = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Wed, 02 Dec 2026 10:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 02 Dec 2026 09:00:00 GMT", now) == 0.0, "a date in the past: now"
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None


def test_the_hierarchy_is_short_and_all_moor_errors() -> None:
    assert issubclass(ApiTimeout, ApiUnreachable) and issubclass(ApiUnreachable, MoorError)
    assert issubclass(MalformedResponse, ApiError)
    timeout = ApiTimeout("get /api/v1/namespaces: no answer within 1 s", 1.0)
    assert timeout.limit == 1.0
    garbled = MalformedResponse.of_body(200, "list /api/v1/pods", ValueError("Expecting value"))
    assert garbled.status == 200 and "list /api/v1/pods" in str(garbled) and "not valid JSON" in str(garbled)


def test_the_old_names_are_importable_from_the_client() -> None:
    assert client.ApiError is ApiError and client.ApiUnreachable is ApiUnreachable


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=10, first_delay=0.5, max_delay=3)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_only_shortens_a_backoff() -> None:
    policy = RetryPolicy(attempts=4, first_delay=1, max_delay=8, jitter=0.5)
    assert policy.next_delay(2, elapsed=0, rng=lambda: 0.0) == 2.0
    assert policy.next_delay(2, elapsed=0, rng=lambda: 1.0) == 1.0
    assert policy.next_delay(2, elapsed=0, rng=lambda: 0.5) == 1.5


def test_retry_after_is_a_minimum_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=4, first_delay=0.2, max_delay=3, jitter=0.5)
    assert policy.next_delay(1, elapsed=0, retry_after=2, rng=lambda: 0.0) == 2.0
    assert policy.next_delay(1, elapsed=0, retry_after=2, rng=lambda: 1.0) == 3.0, "jittered up, capped"
    assert policy.next_delay(1, elapsed=0, retry_after=120, rng=lambda: 0.0) == 3.0, "one answer parks no one long"


def test_no_wait_once_the_tries_or_the_budget_are_spent() -> None:
    policy = RetryPolicy(attempts=3, first_delay=1, max_delay=4, budget=10)
    assert policy.next_delay(2, elapsed=0) == 2.0
    assert policy.next_delay(3, elapsed=0) is None, "three tries made"
    assert policy.next_delay(1, elapsed=9.5) is None, "the wait would end past the budget"


def test_the_api_policy_keeps_recovery_fast() -> None:
    policy = client.API_RETRY
    waits = [policy.delay(n) for n in range(1, policy.attempts)]
    assert sum(waits) < 2, "a request retried through a short outage answers within seconds"
    assert policy.max_delay <= 5 and policy.budget < 60
