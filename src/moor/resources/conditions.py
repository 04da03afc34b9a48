"""Status conditions with metav1.Condition semantics, and the condition types and reasons Moor uses.

Moor follows the kstatus convention: `Ready` is the summary (`kubectl wait --for=condition=Ready`),
`Reconciling` is True while work is in progress, `Stalled` is True when it cannot progress without a
change. `Drifted` and `AwaitingApproval` are only present while they are True.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

# Condition types
READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
DRIFTED = "Drifted"
AWAITING_APPROVAL = "AwaitingApproval"

# Reasons
SUCCEEDED = "Succeeded"
PROGRESSING = "Progressing"
ARTIFACT_FAILED = "ArtifactFailed"
SOURCE_NOT_READY = "SourceNotReady"
VERIFICATION_FAILED = "VerificationFailed"
BUILD_FAILED = "BuildFailed"
VALIDATION_FAILED = "ValidationFailed"
APPLY_FAILED = "ApplyFailed"
HEALTH_CHECK_FAILED = "HealthCheckFailed"
PRUNE_FAILED = "PruneFailed"
DEPENDENCY_NOT_READY = "DependencyNotReady"
SUSPENDED = "Suspended"
DRIFT_DETECTED = "DriftDetected"
APPROVAL_REQUIRED = "ApprovalRequired"
CLUSTER_UNREACHABLE = "ClusterUnreachable"
"""The API server did not answer, timed out, or answered 429/5xx: the cluster failed, not the object."""
WATCH_FAILED = "WatchFailed"
"""A kind the object needs cannot be listed and watched (forbidden, not served, or too slow)."""
RECORD_FAILED = "RecordFailed"
"""Moor could not write its own bookkeeping (status, history record, snapshot)."""
OWNERSHIP_CONFLICT = "OwnershipConflict"
"""The Sync declares objects that another Sync owns (their `moor.dev/sync` label names it)."""
RECONCILE_ERROR = "ReconcileError"
"""Any other unexpected error of a reconcile."""
ROLLED_BACK = "RolledBack"
"""A revision failed and the last healthy one was put back (a Ready reason, and a pass's result)."""
DRIFT_CORRECTED = "DriftCorrected"
"""A pass that only put drifted fields back (an event reason, and a pass's result)."""
HEALTHY_RESULTS = (SUCCEEDED, DRIFT_CORRECTED)
"""The results of a pass after which the revision ran as Git declares it."""

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"

MESSAGE_MAX_LENGTH = 32768  # metav1.Condition's limit
_REASON = re.compile(r"[A-Z][A-Za-z0-9]*")


@dataclass(frozen=True)
class Condition:
    """One entry of `status.conditions`; `set_condition` fills in `last_transition_time`."""

    type: str
    status: str
    reason: str
    message: str = ""
    observed_generation: int = 0
    last_transition_time: datetime | None = None

    @property
    def is_true(self) -> bool:
        return self.status == TRUE

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Condition:
        stamp = data.get("lastTransitionTime")
        return cls(
            type=str(data["type"]),
            status=str(data.get("status") or UNKNOWN),
            reason=str(data.get("reason") or "Unknown"),
            message=str(data.get("message") or ""),
            observed_generation=int(data.get("observedGeneration") or 0),
            last_transition_time=parse_time(stamp),
        )

    def to_dict(self) -> dict[str, Any]:
        """The metav1.Condition form, ready to go into a status patch."""
        stamp = self.last_transition_time or datetime.now(UTC)
        return {
            "type": self.type,
            "status": self.status,
            "observedGeneration": self.observed_generation,
            "lastTransitionTime": format_time(stamp),
            "reason": self.reason,
            "message": _truncate(self.message),
        }


def get_condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Condition | None:
    for entry in conditions or ():
        if entry.get("type") == type_:
            return Condition.from_dict(entry)
    return None


def is_condition_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    condition = get_condition(conditions, type_)
    return condition is not None and condition.is_true


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None, condition: Condition, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """A new conditions list with `condition` in place of its type's entry, or appended.

    The transition time moves only when the status changes, as metav1 prescribes; reason, message
    and observed generation are always replaced.
    """
    if condition.status not in (TRUE, FALSE, UNKNOWN):
        raise ValueError(f"a condition's status is True, False or Unknown, not {condition.status!r}")
    if not _REASON.fullmatch(condition.reason):
        raise ValueError(f"a condition's reason is one CamelCase word, not {condition.reason!r}")
    result = [dict(entry) for entry in conditions or ()]
    for index, entry in enumerate(result):
        if entry.get("type") != condition.type:
            continue
        previous = Condition.from_dict(entry)
        stamp = (
            previous.last_transition_time
            if previous.status == condition.status and previous.last_transition_time is not None
            else now or datetime.now(UTC)
        )
        result[index] = replace(condition, last_transition_time=stamp).to_dict()
        return result
    result.append(replace(condition, last_transition_time=now or datetime.now(UTC)).to_dict())
    return result


def remove_condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> list[dict[str, Any]]:
    return [dict(entry) for entry in conditions or () if entry.get("type") != type_]


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC at second precision, as metav1.Time serialises."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time as the API (and OCI annotations) write them; None when it is not one. A time
    without a zone is UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _truncate(message: str) -> str:
    if len(message) <= MESSAGE_MAX_LENGTH:
        return message
    return message[: MESSAGE_MAX_LENGTH - 1] + "…"
