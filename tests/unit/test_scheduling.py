"""When an object is reconciled again: intervals with jitter, backoff after failures, short when the cluster failed."""

from __future__ import annotations

import pytest

from moor.cluster.cache import InformerNotSynced
from moor.cluster.client import ApiError, ApiUnreachable
from moor.cluster.discovery import ResourceType
from moor.controller.scheduling import (
    CLUSTER_BACKOFF_CAP,
    MAX_BACKOFF,
    Requeue,
    UnexpectedFailure,
    cluster_failed,
    jittered,
)
from moor.errors import MoorError
from moor.resources import conditions


def test_jitter_stays_within_ten_percent() -> None:
    delays = [jittered(100.0) for _ in range(500)]
    assert all(90.0 <= delay <= 110.0 for delay in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(("failures", "nominal"), [(0, 5.0), (1, 10.0), (2, 20.0), (5, 160.0)])
def test_backoff_doubles_with_each_failure_in_a_row(failures: int, nominal: float) -> None:
    requeue = Requeue.backoff(5.0, failures)
    assert requeue.failed
    assert requeue.delay is not None
    assert nominal * 0.9 <= requeue.delay <= nominal * 1.1


def test_backoff_is_capped_and_survives_huge_failure_counts() -> None:
    requeue = Requeue.backoff(5.0, 10_000)
    assert requeue.delay is not None
    assert requeue.delay <= MAX_BACKOFF * 1.1


def test_a_retry_interval_longer_than_the_cap_is_kept() -> None:
    requeue = Requeue.backoff(900.0, 3)
    assert requeue.delay is not None
    assert requeue.delay >= 900.0 * 0.9


def test_intervals_and_never_are_not_failures() -> None:
    assert Requeue.after(30.0) == Requeue(30.0, failed=False)
    assert Requeue.never().delay is None
    assert not Requeue.never().failed


@pytest.mark.parametrize(
    "error",
    [
        ApiUnreachable("cannot reach the API server at https://127.0.0.1:6443: connection refused"),
        ApiError(503, "ServiceUnavailable", "etcd is unavailable"),
        ApiError(500, "InternalError", "etcdserver: request timed out"),
        ApiError(429, "TooManyRequests", "too many requests"),
    ],
)
def test_after_a_failure_of_the_cluster_the_backoff_stays_short(error: MoorError) -> None:
    assert cluster_failed(error)
    for failures in (0, 3, 12, 100):
        requeue = Requeue.after_error(error, 60.0, failures)
        assert requeue.failed
        assert requeue.delay is not None
        assert requeue.delay <= CLUSTER_BACKOFF_CAP * 1.1
    assert UnexpectedFailure.of(error).reason == conditions.CLUSTER_UNREACHABLE
    assert UnexpectedFailure.of(error).message == str(error)


@pytest.mark.parametrize(
    "error",
    [ApiError(403, "Forbidden", "forbidden"), ApiError(422, "Invalid", "bad"), MoorError("no"), KeyError("spec")],
)
def test_other_errors_back_off_as_usual(error: Exception) -> None:
    assert not cluster_failed(error)
    requeue = Requeue.after_error(error, 5.0, 6)
    assert requeue.delay is not None
    assert requeue.delay >= 5.0 * 2**6 * 0.9  # past the short cap
    assert UnexpectedFailure.of(error).reason == conditions.RECONCILE_ERROR


def test_an_unexpected_error_names_its_type() -> None:
    failure = UnexpectedFailure.of(KeyError("spec"))
    assert failure.message == "unexpected error (KeyError): 'spec'"
    assert UnexpectedFailure.of(MoorError("the Secret ns/x does not exist")).message == "the Secret ns/x does not exist"


DEPLOYMENTS = ResourceType("apps", "v1", "Deployment", "deployments", namespaced=True)


@pytest.mark.parametrize(("reason", "unanswered"), [("timeout", True), ("unreachable", True), ("forbidden", False)])
def test_a_list_without_an_answer_is_a_failure_of_the_cluster_a_refused_one_is_not(
    reason: str, unanswered: bool
) -> None:
    error = InformerNotSynced(DEPLOYMENTS, reason, f"{reason}: details")
    assert cluster_failed(error) is unanswered
    assert str(error).startswith("cannot list deployments.apps: ")
