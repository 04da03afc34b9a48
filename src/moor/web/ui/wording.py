"""A Sync's or source's conditions as sentences a person reads ("Waiting for approval of abc123 ...")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moor.resources import conditions
from moor.web.ui.overview import short_revision

_REASONS = {
    conditions.SUCCEEDED: "Everything Git declares is applied and healthy.",
    conditions.PROGRESSING: "Applying, or waiting for the objects to become healthy.",
    conditions.ARTIFACT_FAILED: "The source's revision could not be fetched.",
    conditions.SOURCE_NOT_READY: "The source has no usable revision yet.",
    conditions.VERIFICATION_FAILED: "The revision's signature was not accepted, so nothing from it is applied.",
    conditions.BUILD_FAILED: "The manifests could not be rendered.",
    conditions.VALIDATION_FAILED: "The API server refused the rendered objects in a dry run; nothing was written.",
    conditions.APPLY_FAILED: "Writing the objects failed.",
    conditions.HEALTH_CHECK_FAILED: "The objects were applied but did not become healthy in time.",
    conditions.PRUNE_FAILED: "Objects Git no longer declares could not be deleted.",
    conditions.DEPENDENCY_NOT_READY: "Waiting for a Sync this one depends on.",
    conditions.SUSPENDED: "Suspended: nothing is applied until it is resumed.",
    conditions.DRIFT_DETECTED: "Objects in the cluster differ from Git.",
    conditions.CLUSTER_UNREACHABLE: "The API server did not answer.",
    conditions.OWNERSHIP_CONFLICT: "Another Sync already manages some of these objects.",
}


@dataclass(frozen=True)
class Sentence:
    type: str
    healthy: bool
    """Whether this condition is good news (Ready=True, Drifted=False, ...)."""
    text: str
    detail: str
    since: str


def _good(type_: str, status: str) -> bool:
    if type_ in (conditions.READY,):
        return status == conditions.TRUE
    return status != conditions.TRUE  # Drifted, Stalled, Reconciling, AwaitingApproval: True is something to see


def describe(condition: Mapping[str, Any], status: Mapping[str, Any]) -> Sentence:
    """One condition in plain words, the controller's own message kept as the detail."""
    type_ = str(condition.get("type", ""))
    state = str(condition.get("status", ""))
    reason = str(condition.get("reason", ""))
    message = str(condition.get("message", ""))
    since = str(condition.get("lastTransitionTime", ""))
    if type_ == conditions.AWAITING_APPROVAL and state == conditions.TRUE:
        pending = short_revision(str(status.get("pendingRevision") or "")) or "a new revision"
        text = f"Waiting for approval of {pending} by someone who may approve."
    elif type_ == conditions.DRIFTED and state == conditions.TRUE:
        count = len(status.get("drift") or [])
        text = f"{count} object{'s' if count != 1 else ''} in the cluster differ{'s' if count == 1 else ''} from Git."
    elif type_ == conditions.READY and state == conditions.TRUE:
        text = "Ready: everything Git declares is applied and healthy."
    elif type_ == conditions.READY and state == conditions.UNKNOWN:
        text = "Working on it: " + _REASONS.get(reason, "a reconcile is in progress.").lower()
    elif type_ == conditions.STALLED and state == conditions.TRUE:
        text = "Stalled: it will not get better without a change to Git or the cluster."
    elif type_ == conditions.RECONCILING and state == conditions.TRUE:
        text = "A reconcile is in progress."
    else:
        text = _REASONS.get(reason) or f"{type_} is {state}" + (f" ({reason})." if reason else ".")
    return Sentence(type_, _good(type_, state), text, message, since)


def describe_all(obj: Mapping[str, Any]) -> list[Sentence]:
    """Every condition of `obj` in plain words, Ready first."""
    status: Mapping[str, Any] = obj.get("status") or {}
    found: Sequence[Mapping[str, Any]] = status.get("conditions") or []
    ordered = sorted(found, key=lambda c: (c.get("type") != conditions.READY, str(c.get("type"))))
    return [describe(condition, status) for condition in ordered]
