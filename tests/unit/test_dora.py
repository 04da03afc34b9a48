"""Delivery metrics (DORA) from a scripted history whose answers are worked out by hand below."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from moor.record.dora import ALL, commit_times_of, delivery_figures, parse_time, percentile
from moor.record.metrics import Metrics

NOW = datetime(2024, 6, 30, tzinfo=UTC)
WINDOW = timedelta(days=30)  # from 2024-05-31T00:00Z


def record(
    sync: str,
    sequence: int,
    revision: str,
    result: str,
    started: str,
    finished: str | None = None,
    *,
    committed: str | None = None,
    trigger: str = "new revision",
    namespace: str = "shop",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "sync": sync,
        "sequence": sequence,
        "revision": f"main@sha1:{revision * 40}"[:50],
        "result": result,
        "trigger": trigger,
        "startedAt": f"2024-{started}Z",
    }
    if finished:
        spec["finishedAt"] = f"2024-{finished}Z"
    if committed:
        spec["committedAt"] = f"2024-{committed}Z"
    return {"metadata": {"namespace": namespace, "name": f"{sync}.{sequence:06d}"}, "spec": spec}


def rev(char: str) -> str:
    return f"main@sha1:{char * 40}"


# Sync shop/web:
#   0: an old deployment before the window: not counted.
#   1, 2: healthy deployments, lead times 70 min (4200 s) and 40 min (2400 s).
#   3, 4: revision 3 is unhealthy and rolled back (the first record is closed Interrupted, the rollback's
#         record says RolledBack): a failed change, restored by the rollback 15 min (900 s) after it began.
#   5: revision 4 is rejected (ValidationFailed, retried 3 times) and never rolled back.
#   6: revision 5 deploys healthy (lead 80 min = 4800 s) and restores revision 4's failure:
#      14:20 - 12:00 = 8400 s.
#   7: a drift correction and 8: a pin back to revision 1: neither is a change.
#   9: revision 6 still in progress: not a change yet.
WEB = [
    record("web", 1, "0", "Succeeded", "05-01T01:00:00", "05-01T01:10:00", committed="04-30T00:00:00"),
    record("web", 2, "1", "Succeeded", "06-01T01:00:00", "06-01T01:10:00", committed="06-01T00:00:00"),
    record("web", 3, "2", "Succeeded", "06-02T00:30:00", "06-02T00:40:00", committed="06-02T00:00:00"),
    record("web", 4, "3", "Interrupted", "06-03T10:00:00", "06-03T10:05:00", committed="06-03T09:00:00"),
    record("web", 5, "3", "RolledBack", "06-03T10:00:00", "06-03T10:15:00", trigger="rollback"),
    record("web", 6, "4", "ValidationFailed", "06-05T12:00:00", "06-05T12:01:00"),
    record("web", 7, "5", "Succeeded", "06-05T14:00:00", "06-05T14:20:00", committed="06-05T13:00:00"),
    record("web", 8, "5", "DriftCorrected", "06-06T00:00:00", "06-06T00:00:05", trigger="drift correction"),
    record("web", 9, "1", "Succeeded", "06-07T00:00:00", "06-07T00:01:00", trigger="pin"),
    record("web", 10, "6", "InProgress", "06-29T23:00:00"),
]
# Sync shop/api: revision a deploys healthy 5 min after its commit (the commit time comes from the
# GitRepository, the record has none); revision b fails to build and is not restored yet.
API = [
    record("api", 1, "a", "Succeeded", "06-10T00:01:00", "06-10T00:05:00"),
    record("api", 2, "b", "BuildFailed", "06-20T00:00:00", "06-20T00:00:05"),
]
REPOSITORIES = [
    {"status": {"artifact": {"revision": rev("a"), "committedAt": "2024-06-10T00:00:00Z"}}},
    {"status": {"artifact": {"revision": rev("z")}}},
]


@pytest.fixture
def figures() -> dict[tuple[str, str], Any]:
    return delivery_figures([*API, *WEB], now=NOW, window=WINDOW, commit_times=commit_times_of(REPOSITORIES))


def test_a_sync_with_deployments_a_rollback_and_a_restored_failure(figures: dict[tuple[str, str], Any]) -> None:
    web = figures[("shop", "web")]
    assert web.deployments == 3
    assert web.deployments_per_day == pytest.approx(0.1)
    assert sorted(web.lead_times) == [2400, 4200, 4800]
    assert (web.lead_time_p50, web.lead_time_p90) == (4200, 4800)
    assert (web.failed_changes, web.changes) == (2, 5)
    assert web.change_failure_rate == pytest.approx(0.4)
    assert sorted(web.restore_times) == [900, 8400]
    assert (web.time_to_restore_p50, web.time_to_restore_p90) == (900, 8400)
    assert web.unrestored == 0


def test_commit_times_from_the_source_and_an_unrestored_failure(figures: dict[tuple[str, str], Any]) -> None:
    api = figures[("shop", "api")]
    assert api.deployments == 1
    assert api.lead_times == (300,)
    assert api.change_failure_rate == 0.5
    assert api.time_to_restore_p50 is None
    assert api.unrestored == 1


def test_overall_figures_pool_every_change_rather_than_averaging_syncs(figures: dict[tuple[str, str], Any]) -> None:
    overall = figures[ALL]
    assert overall.deployments == 4
    assert overall.deployments_per_day == pytest.approx(4 / 30)
    assert (overall.lead_time_p50, overall.lead_time_p90) == (2400, 4800)  # of 300, 2400, 4200, 4800
    assert overall.change_failure_rate == pytest.approx(3 / 7)
    assert overall.restore_times == (900, 8400)
    assert overall.unrestored == 1
    document = overall.to_dict()
    assert document["deployments"] == 4
    assert document["leadTimeSeconds"] == {"p50": 2400, "p90": 4800, "count": 4}
    assert document["changeFailureRate"] == pytest.approx(0.4286)
    assert document["unrestoredFailures"] == 1


def test_a_shorter_window_sees_less() -> None:
    figures = delivery_figures(WEB, now=NOW, window=timedelta(days=26))  # from 2024-06-04
    web = figures[("shop", "web")]
    assert web.deployments == 1  # revision 5 only; the pin is no new deployment
    assert (web.failed_changes, web.changes) == (1, 2)


def test_no_history_gives_zero_deployments_and_no_rates() -> None:
    overall = delivery_figures([], now=NOW)[ALL]
    assert overall.deployments == 0
    assert overall.change_failure_rate is None
    assert overall.lead_time_p50 is None
    assert overall.to_dict()["timeToRestoreSeconds"] == {"p50": None, "p90": None, "count": 0}


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [([], 50, None), ([7], 90, 7), ([1, 2, 3, 4], 50, 2), ([1, 2, 3, 4], 90, 4), ([3, 1, 2], 50, 2), ([5, 1], 1, 1)],
)
def test_percentile_is_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    assert percentile(values, p) == expected


def test_incomplete_records_are_skipped() -> None:
    broken = [{"metadata": {"namespace": "x"}, "spec": {"sync": "s", "sequence": 1, "result": "Succeeded"}}]
    assert delivery_figures(broken, now=NOW)[ALL].deployments == 0


def test_the_figures_become_prometheus_gauges(figures: dict[tuple[str, str], Any]) -> None:
    metrics = Metrics()
    metrics.set_delivery(figures)
    sample = metrics.registry.get_sample_value
    assert sample("moor_deployments", {"namespace": "shop", "name": "web"}) == 3
    assert sample("moor_deployments", {"namespace": "", "name": ""}) == 4
    assert sample("moor_lead_time_seconds", {"namespace": "shop", "name": "web", "quantile": "0.9"}) == 4800
    assert sample("moor_change_failure_ratio", {"namespace": "shop", "name": "api"}) == 0.5
    assert sample("moor_time_to_restore_seconds", {"namespace": "shop", "name": "web", "quantile": "0.5"}) == 900
    assert sample("moor_time_to_restore_seconds", {"namespace": "shop", "name": "api", "quantile": "0.5"}) is None
    metrics.set_delivery({})
    assert sample("moor_deployments", {"namespace": "shop", "name": "web"}) is None, "stale series are dropped"


def test_a_time_without_a_zone_is_read_as_utc() -> None:
    assert parse_time("2026-01-01T10:00:00") == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert parse_time("2026-01-01T10:00:00Z") == datetime(2026, 1, 1, 10, tzinfo=UTC)
