"""Delivery metrics (DORA) from the durable history: pure functions over SyncRecords.

A *change* is a revision a Sync tried to deploy (its records, grouped by revision). It *deployed*
when a record of it ended Succeeded (applied and, with `wait`, healthy); it *failed* when a record
of it ended in a revision failure or was rolled back. From those:

- deployment frequency: changes deployed within the window, per day;
- lead time: from the commit's time to the end of its first Succeeded record (p50, p90);
- change failure rate: failed changes / changes, of the changes started within the window;
- time to restore: from the start of a failed change's first failed attempt to the end of the next
  record of the same Sync that left it healthy (Succeeded, or RolledBack to the last healthy
  revision) (p50, p90); failures not restored yet are counted, not measured.

docs/metrics.md explains the same in prose. Drift corrections, interrupted attempts and failures
that are not the revision's fault (a missing source, a dependency not Ready) are not changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from moor.resources import conditions
from moor.resources.conditions import parse_time

SUCCEEDED = conditions.SUCCEEDED
ROLLED_BACK = conditions.ROLLED_BACK
DRIFT_CORRECTED = conditions.DRIFT_CORRECTED
DRIFT_CORRECTION = "drift correction"
REVISION_FAILURES = frozenset(
    {
        conditions.BUILD_FAILED,
        conditions.VALIDATION_FAILED,
        conditions.APPLY_FAILED,
        conditions.PRUNE_FAILED,
        conditions.HEALTH_CHECK_FAILED,
        ROLLED_BACK,
    }
)
RESTORING = frozenset({SUCCEEDED, ROLLED_BACK})
DEFAULT_WINDOW = timedelta(days=30)
ALL = ("", "")
"""The key of the figures over every Sync."""


@dataclass(frozen=True)
class RecordedAttempt:
    """What the metrics need of one SyncRecord."""

    namespace: str
    sync: str
    sequence: int
    revision: str
    result: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    committed_at: datetime | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RecordedAttempt | None:
        """None for a record too incomplete to count (no revision or no start)."""
        spec = record.get("spec") or {}
        started = parse_time(spec.get("startedAt"))
        if not spec.get("revision") or started is None:
            return None
        return cls(
            namespace=str((record.get("metadata") or {}).get("namespace") or ""),
            sync=str(spec.get("sync") or ""),
            sequence=int(spec.get("sequence") or 0),
            revision=str(spec["revision"]),
            result=str(spec.get("result") or ""),
            trigger=str(spec.get("trigger") or ""),
            started_at=started,
            finished_at=parse_time(spec.get("finishedAt")),
            committed_at=parse_time(spec.get("committedAt")),
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.sync)


@dataclass(frozen=True)
class Change:
    """One revision a Sync tried to deploy, and how that went."""

    namespace: str
    sync: str
    revision: str
    started_at: datetime
    committed_at: datetime | None
    deployed_at: datetime | None
    """End of its first Succeeded record."""
    failed_at: datetime | None
    """Start of its first record that ended in a revision failure or a rollback."""
    restored_at: datetime | None = None
    """End of the first record after `failed_at` that left the Sync healthy."""

    @property
    def lead_time(self) -> float | None:
        if self.deployed_at is None or self.committed_at is None:
            return None
        return max(0.0, (self.deployed_at - self.committed_at).total_seconds())

    @property
    def time_to_restore(self) -> float | None:
        if self.failed_at is None or self.restored_at is None:
            return None
        return max(0.0, (self.restored_at - self.failed_at).total_seconds())


@dataclass(frozen=True)
class DeliveryFigures:
    window: timedelta
    deployments: int
    changes: int
    failed_changes: int
    lead_times: tuple[float, ...]
    restore_times: tuple[float, ...]
    unrestored: int

    @property
    def deployments_per_day(self) -> float:
        return self.deployments / (self.window.total_seconds() / 86400)

    @property
    def change_failure_rate(self) -> float | None:
        return self.failed_changes / self.changes if self.changes else None

    @property
    def lead_time_p50(self) -> float | None:
        return percentile(self.lead_times, 50)

    @property
    def lead_time_p90(self) -> float | None:
        return percentile(self.lead_times, 90)

    @property
    def time_to_restore_p50(self) -> float | None:
        return percentile(self.restore_times, 50)

    @property
    def time_to_restore_p90(self) -> float | None:
        return percentile(self.restore_times, 90)

    def to_dict(self) -> dict[str, Any]:
        return {
            "windowDays": self.window.total_seconds() / 86400,
            "deployments": self.deployments,
            "deploymentsPerDay": round(self.deployments_per_day, 4),
            "leadTimeSeconds": {"p50": self.lead_time_p50, "p90": self.lead_time_p90, "count": len(self.lead_times)},
            "changes": self.changes,
            "failedChanges": self.failed_changes,
            "changeFailureRate": None if self.change_failure_rate is None else round(self.change_failure_rate, 4),
            "timeToRestoreSeconds": {
                "p50": self.time_to_restore_p50,
                "p90": self.time_to_restore_p90,
                "count": len(self.restore_times),
            },
            "unrestoredFailures": self.unrestored,
        }


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def changes_of(attempts: Iterable[RecordedAttempt], commit_times: Mapping[str, datetime] | None = None) -> list[Change]:
    """The changes of every Sync, in the order they started. `commit_times` (revision -> commit time)
    fills in records that carry no committedAt."""
    by_sync: dict[tuple[str, str], list[RecordedAttempt]] = {}
    for attempt in attempts:
        by_sync.setdefault(attempt.key, []).append(attempt)
    changes: list[Change] = []
    for history in by_sync.values():
        changes.extend(_changes_of_one_sync(sorted(history, key=lambda a: (a.started_at, a.sequence)), commit_times))
    return sorted(changes, key=lambda change: (change.started_at, change.namespace, change.sync))


def _changes_of_one_sync(history: list[RecordedAttempt], commit_times: Mapping[str, datetime] | None) -> list[Change]:
    by_revision: dict[str, list[RecordedAttempt]] = {}
    for attempt in history:
        if attempt.result == DRIFT_CORRECTED or attempt.trigger == DRIFT_CORRECTION:
            continue
        by_revision.setdefault(attempt.revision, []).append(attempt)
    changes = []
    for revision, attempts in by_revision.items():
        settled = [a for a in attempts if a.result == SUCCEEDED or a.result in REVISION_FAILURES]
        if not settled:
            continue  # still in progress, interrupted, or failed for reasons outside the revision
        succeeded = [a.finished_at for a in attempts if a.result == SUCCEEDED and a.finished_at is not None]
        failures = [a for a in attempts if a.result in REVISION_FAILURES]
        failed_at = min(a.started_at for a in failures) if failures else None
        committed = next((a.committed_at for a in attempts if a.committed_at is not None), None)
        changes.append(
            Change(
                namespace=attempts[0].namespace,
                sync=attempts[0].sync,
                revision=revision,
                started_at=min(a.started_at for a in attempts),
                committed_at=committed or (commit_times or {}).get(revision),
                deployed_at=min(succeeded) if succeeded else None,
                failed_at=failed_at,
                restored_at=_restored_at(history, failed_at) if failed_at is not None else None,
            )
        )
    return changes


def _restored_at(history: list[RecordedAttempt], failed_at: datetime) -> datetime | None:
    ends = [
        a.finished_at
        for a in history
        if a.result in RESTORING and a.finished_at is not None and a.started_at >= failed_at
    ]
    return min(ends) if ends else None


def figures_of(changes: Iterable[Change], *, now: datetime, window: timedelta = DEFAULT_WINDOW) -> DeliveryFigures:
    """The four figures over `changes`, looking back `window` from `now`."""
    since = now - window
    started = [change for change in changes if change.started_at >= since]
    deployed = [c for c in changes if c.deployed_at is not None and since <= c.deployed_at <= now]
    failed = [change for change in started if change.failed_at is not None]
    return DeliveryFigures(
        window=window,
        deployments=len(deployed),
        changes=len(started),
        failed_changes=len(failed),
        lead_times=tuple(lead for c in deployed if (lead := c.lead_time) is not None),
        restore_times=tuple(time for c in failed if (time := c.time_to_restore) is not None),
        unrestored=sum(1 for change in failed if change.restored_at is None),
    )


def delivery_figures(
    records: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
    commit_times: Mapping[str, datetime] | None = None,
) -> dict[tuple[str, str], DeliveryFigures]:
    """Figures per Sync (namespace, name) and over all of them (key `ALL`), from SyncRecord objects."""
    attempts = [attempt for record in records if (attempt := RecordedAttempt.from_record(record)) is not None]
    changes = changes_of(attempts, commit_times)
    by_sync: dict[tuple[str, str], list[Change]] = {attempt.key: [] for attempt in attempts}
    for change in changes:  # one pass, not one scan of every change per Sync
        by_sync[(change.namespace, change.sync)].append(change)
    figures = {key: figures_of(by_sync[key], now=now, window=window) for key in sorted(by_sync)}
    figures[ALL] = figures_of(changes, now=now, window=window)
    return figures


def commit_times_of(repositories: Iterable[Mapping[str, Any]]) -> dict[str, datetime]:
    """revision -> commit time of the artifacts GitRepositories hold now (for records without committedAt)."""
    times = {}
    for repository in repositories:
        artifact = (repository.get("status") or {}).get("artifact") or {}
        committed = parse_time(artifact.get("committedAt"))
        if artifact.get("revision") and committed is not None:
            times[str(artifact["revision"])] = committed
    return times
