"""How an informer judges a failure, paces its retries and reports itself: the pure parts of cluster/cache.py."""

from __future__ import annotations

import pytest

from moor.cluster.cache import (
    BUSY,
    RECONNECT,
    REFUSED,
    UNEXPECTED,
    InformerFailure,
    InformerNotSynced,
    ThrottledLog,
    WatchBroken,
    classify_failure,
    resource_name,
)
from moor.cluster.discovery import ResourceType
from moor.cluster.errors import ApiError, ApiTimeout, ApiUnreachable

DEPLOYMENTS = ResourceType("apps", "v1", "Deployment", "deployments", True)
CONFIG_MAPS = ResourceType("", "v1", "ConfigMap", "configmaps", True)


@pytest.mark.parametrize(
    ("status", "reason", "refused"),
    [
        (401, "unauthorized", True),
        (403, "forbidden", True),
        (404, "not served", True),
        (429, "too many requests", False),
        (500, "server error", False),
        (503, "server error", False),
        (400, "error", False),
    ],
)
def test_an_answer_of_the_server_is_judged_by_its_status(status: int, reason: str, refused: bool) -> None:
    failure = classify_failure(ApiError(status, "", "the server's message"))
    assert (failure.reason, failure.refused) == (reason, refused)
    assert failure.detail == "the server's message"


def test_no_answer_is_retried_soon_and_never_called_refused() -> None:
    unreachable = classify_failure(ApiUnreachable("cannot reach the API server at https://x: refused"))
    stalled = classify_failure(WatchBroken("the watch stream was still open, silent, after 330s"))
    timed_out = classify_failure(TimeoutError())
    slow = classify_failure(ApiTimeout("list /api/v1/configmaps: no answer within 60 s", 60.0))
    assert (slow.reason, slow.detail, slow.pace) == (
        "timeout",
        "list /api/v1/configmaps: no answer within 60 s",
        RECONNECT,
    )
    assert (unreachable.reason, unreachable.pace, unreachable.refused) == ("unreachable", RECONNECT, False)
    assert (stalled.reason, stalled.pace) == ("watch broken", RECONNECT)
    assert (timed_out.reason, timed_out.detail) == ("timeout", "no answer in time")


def test_an_unexpected_exception_is_a_failure_named_by_its_type() -> None:
    failure = classify_failure(KeyError("metadata"))
    assert failure.reason == "error"
    assert failure.detail == "KeyError: 'metadata'"
    assert failure.pace is UNEXPECTED and not failure.refused


def test_after_the_server_comes_back_the_next_try_is_at_most_two_seconds_away() -> None:
    delays = [RECONNECT.delay(attempt) for attempt in range(1, 40)]
    assert delays[:4] == [0.25, 0.5, 1.0, 2.0]
    assert max(delays) == 2.0
    assert RECONNECT.delay(1000) == 2.0, "no overflow however long the outage"


def test_jitter_only_shortens_a_pause_by_up_to_half() -> None:
    assert BUSY.next_delay(10, 0.0, rng=lambda: 0.0) == 5.0
    assert BUSY.next_delay(10, 0.0, rng=lambda: 0.999) == pytest.approx(2.5, abs=0.01)
    failure = classify_failure(ApiError(503, "", "the aggregated API is down"))
    assert all(2.5 <= failure.pause(in_a_row) <= 5.0 for in_a_row in range(5, 100)), "an informer never gives up"


def test_a_server_that_says_when_to_come_back_is_heard() -> None:
    failure = classify_failure(ApiError.of(429, "TooManyRequests", "slow down", retry_after=4.0))
    assert (failure.reason, failure.retry_after) == ("too many requests", 4.0)
    assert 4.0 <= failure.pause(1) <= 5.0, "Retry-After is a minimum, capped at the pace's longest pause"


def test_a_kind_that_may_not_be_listed_is_retried_slowly() -> None:
    assert REFUSED.delay(1) == 2.0
    assert REFUSED.delay(20) == 30.0


def test_resource_names_read_as_kubectl_writes_them() -> None:
    assert resource_name(DEPLOYMENTS) == "deployments.apps"
    assert resource_name(CONFIG_MAPS) == "configmaps"


def test_not_synced_says_which_kind_and_why() -> None:
    forbidden = InformerFailure("forbidden", 'deployments.apps is forbidden: User "x" cannot list', REFUSED)
    error = InformerNotSynced.of_failure(DEPLOYMENTS, forbidden)
    assert str(error) == 'cannot list deployments.apps: forbidden: deployments.apps is forbidden: User "x" cannot list'
    assert (error.resource, error.reason) == (DEPLOYMENTS, "forbidden")


def test_a_missed_deadline_says_how_long_was_waited_and_the_last_failure() -> None:
    silent = InformerNotSynced.of_deadline(CONFIG_MAPS, 30.0, None)
    assert str(silent) == "cannot list configmaps: the API server did not answer within 30s"
    assert silent.reason == "timeout"
    busy = InformerFailure("server error", "the API server answered 503", BUSY)
    failing = InformerNotSynced.of_deadline(CONFIG_MAPS, 2.5, busy)
    assert str(failing) == "cannot list configmaps: server error: the API server answered 503 (for 2.5s)"
    assert failing.reason == "server error"


def test_a_throttled_log_lets_one_message_a_minute_through_and_counts_the_rest() -> None:
    throttle = ThrottledLog(interval=60.0)
    assert throttle.admit("listener", now=100.0) == 0
    assert throttle.admit("listener", now=110.0) is None
    assert throttle.admit("listener", now=159.0) is None
    assert throttle.admit("other", now=120.0) == 0, "each key has its own allowance"
    assert throttle.admit("listener", now=160.0) == 2, "the next message says how many were held back"
    assert throttle.admit("listener", now=161.0) is None
    throttle.forget("listener")
    assert throttle.admit("listener", now=162.0) == 0, "after forget the next failure is reported at once"
