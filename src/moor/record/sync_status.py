"""A Sync's next status, decided from the one before and how a pass ended: pure, so each rule is unit-tested
as the health rules are. `controller/sync_report.py` writes what these return (one status patch per
step) and does the rest of the bookkeeping: history records, events, metrics.

Every function takes the status as the pass last knew it and returns a new one; none changes its input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from moor.plan import Drift
from moor.record import readiness
from moor.resources import Condition, conditions, set_condition
from moor.resources.conditions import format_time

Status = dict[str, Any]
HISTORY_LENGTH = 10
"""Entries of `status.history`, newest first (the SyncRecords keep more)."""
DRIFT_SHOWN = 5
"""Drifted objects the Drifted condition's message names (status.drift lists them all)."""


def observed(status: Mapping[str, Any], generation: int, reconcile_requested: str = "") -> Status:
    """The spec generation this pass acted on, and the `moor.dev/reconcile` request it answered."""
    result = {**status, "observedGeneration": generation}
    if reconcile_requested:
        result["lastHandledReconcileAt"] = reconcile_requested
    return result


def with_drift(status: Mapping[str, Any], drifted: Sequence[Drift], generation: int) -> Status:
    """`status.drift` and the Drifted condition show drift left in place; both vanish when there is none."""
    result = dict(status)
    if not drifted:
        result.pop("drift", None)
        result["conditions"] = conditions.remove_condition(status.get("conditions"), conditions.DRIFTED)
        return result
    result["drift"] = [drift.to_dict() for drift in drifted]
    objects = len({drift.ref for drift in drifted})
    message = f"{objects} object(s) differ from Git: " + "; ".join(str(d) for d in drifted[:DRIFT_SHOWN])
    condition = Condition(conditions.DRIFTED, conditions.TRUE, conditions.DRIFT_DETECTED, message, generation)
    result["conditions"] = set_condition(status.get("conditions"), condition)
    return result


def applied(status: Mapping[str, Any], revision: str, generation: int) -> Status:
    """`revision` is applied (and healthy, when the Sync waits): Ready=True, no approval pending."""
    ready = readiness.ready(status.get("conditions"), conditions.SUCCEEDED, f"Applied revision: {revision}", generation)
    result = {**status, "lastAttemptedRevision": revision}
    result["conditions"] = conditions.remove_condition(ready, conditions.AWAITING_APPROVAL)
    result.pop("pendingRevision", None)
    return result


def failed(
    status: Mapping[str, Any], reason: str, message: str, generation: int, *, stalled: bool, revision: str
) -> Status:
    """The pass failed: Ready=False with `reason` (Stalled too, when retrying cannot help)."""
    result = dict(status)
    result["conditions"] = readiness.failed(status.get("conditions"), reason, message, generation, stalled=stalled)
    if revision:
        result["lastAttemptedRevision"] = revision
    return result


def rolled_back(
    status: Mapping[str, Any],
    *,
    failed_revision: str,
    reason: str,
    detail: str,
    rolled_back_to: str,
    generation: int,
    now: datetime,
) -> Status:
    """`failed_revision` failed (`reason`, `detail`) and the last healthy one is back: Ready=False,
    reason RolledBack, and `status.rollback` says what happened (held until Git moves on)."""
    message = rolled_back_message(failed_revision, reason, rolled_back_to)
    result = dict(status)
    result["rollback"] = {
        "failedRevision": failed_revision,
        "reason": reason,
        "message": detail[:2048],
        "rolledBackTo": rolled_back_to,
        "at": format_time(now),
    }
    result["conditions"] = readiness.failed(status.get("conditions"), conditions.ROLLED_BACK, message, generation)
    result["lastAttemptedRevision"] = failed_revision
    return result


def rolled_back_message(failed_revision: str, reason: str, rolled_back_to: str) -> str:
    return f"revision {failed_revision} failed ({reason}) and was rolled back to {rolled_back_to}"


def awaiting_approval(status: Mapping[str, Any], revision: str, message: str, generation: int) -> Status:
    """`revision` waits for `moor approve`: AwaitingApproval=True and `status.pendingRevision`."""
    waiting = Condition(
        conditions.AWAITING_APPROVAL, conditions.TRUE, conditions.APPROVAL_REQUIRED, message, generation
    )
    result = {**status, "pendingRevision": revision}
    result["conditions"] = set_condition(status.get("conditions"), waiting)
    return result


def worth_recording(
    status: Mapping[str, Any], revision: str, result: str, *, has_record: bool, changed_anything: bool
) -> bool:
    """Whether an ending is history: only attempts at a revision are ("the source has no artifact yet" is
    not), and the same result at the same revision again is not, unless it changed something."""
    last: Mapping[str, Any] = (status.get("history") or [{}])[0]
    return bool(revision) and (
        has_record or changed_anything or last.get("revision") != revision or last.get("result") != result
    )


def with_history(status: Mapping[str, Any], entry: Mapping[str, Any], *, retry: bool) -> Status:
    """`entry` first in `status.history`; a retry of the last entry's attempt replaces it, keeping when that
    attempt started."""
    history: list[Mapping[str, Any]] = list(status.get("history") or [])
    newest = dict(entry)
    if retry and history:
        newest["startedAt"] = history[0].get("startedAt", newest.get("startedAt"))
        history = history[1:]
    return {**status, "history": [newest, *history][:HISTORY_LENGTH]}
