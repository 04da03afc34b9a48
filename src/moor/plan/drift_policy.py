"""Deciding what to do with drift: which differences to write now, which to report, which to leave alone.

A difference is *drift* when Git has not moved: the revision and the Sync's spec are the ones Moor
last applied, and the object is one Moor applied before (it is in the inventory). Everything else is
a change Git asks for and is always written. Drift follows the Sync's `drift.mode`, or the object's
own `moor.dev/drift` annotation in Git:

- `correct`: write it (put the Git state back) and report it as corrected;
- `alert`: leave the cluster as it is and report it;
- `ignore`: leave it and say nothing.

Fields listed in `drift.ignore` belong to someone else (e.g. replicas under an HPA): they are never
reported, and updates are applied without them, so server-side apply leaves them to their owner. A
create still sends them, so a new object starts from what Git declares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from moor.objects import DRIFT_ANNOTATION, FIELD_MANAGER, ObjectRef
from moor.plan.changes import Action, ObjectChange, Plan
from moor.plan.drift import Drift, attribute_drift, remove_fields, without_ignored
from moor.plan.managed_fields import applied_fields
from moor.sharding.assignment import BUCKET_LABEL

CORRECT = "correct"
ALERT = "alert"
IGNORE = "ignore"
MODES = (CORRECT, ALERT, IGNORE)
DELETED = "/"
"""The path reported for a managed object that someone deleted."""

IgnoredPaths = Callable[[ObjectRef], tuple[str, ...]]


@dataclass(frozen=True)
class DriftDecision:
    writes: tuple[ObjectChange, ...]
    """Creates and updates to apply now, in apply order (desired objects trimmed of ignored fields)."""
    corrected: tuple[Drift, ...]
    """Drift these writes put back."""
    reported: tuple[Drift, ...]
    """Drift left in place (alert mode): what `status.drift` shows."""


def decide_drift(
    plan: Plan,
    *,
    inventory: Iterable[ObjectRef],
    git_moved: bool,
    mode: str,
    ignored_paths: IgnoredPaths,
) -> DriftDecision:
    """Splits the plan's creates and updates into writes and drift, following each object's mode."""
    applied_before = {ref.identity for ref in inventory}
    writes: list[ObjectChange] = []
    corrected: list[Drift] = []
    reported: list[Drift] = []
    for change in plan.changes:
        if change.action not in (Action.CREATE, Action.UPDATE) or change.desired is None:
            continue
        kept = _without_ignored(change, ignored_paths(change.ref))
        if kept is None:
            continue
        if git_moved or kept.ref.identity not in applied_before or _only_bookkeeping(kept):
            writes.append(kept)
            continue
        drifts = _attribute(kept)
        object_mode = _mode_of(kept, mode)
        if object_mode == CORRECT:
            writes.append(kept)
            corrected.extend(drifts)
        elif object_mode == ALERT:
            reported.extend(drifts)
    return DriftDecision(tuple(writes), tuple(corrected), tuple(reported))


BOOKKEEPING_PATHS = frozenset({f"/metadata/labels/{BUCKET_LABEL.replace('/', '~1')}"})
"""Fields Moor keeps on every managed object for itself, not declared in Git: an object that lacks them
(applied by an older Moor) gets them whatever the drift mode, and that is never reported as drift."""


def _only_bookkeeping(change: ObjectChange) -> bool:
    return change.action is Action.UPDATE and all(str(d.path) in BOOKKEEPING_PATHS for d in change.differences)


def _without_ignored(change: ObjectChange, ignored: tuple[str, ...]) -> ObjectChange | None:
    """The change minus ignored fields; None when nothing else differs."""
    if not ignored or change.desired is None:
        return change
    if change.action is Action.CREATE:
        return change
    remaining = tuple(without_ignored(change.differences, ignored))
    if not remaining:
        return None
    return replace(change, differences=remaining, desired=remove_fields(change.desired, ignored))


def _attribute(change: ObjectChange) -> list[Drift]:
    if change.action is Action.CREATE or change.live is None:
        return [Drift(change.ref, (DELETED,), manager="", operation="Delete")]
    return attribute_drift(change.live, change.differences)


def _mode_of(change: ObjectChange, default: str) -> str:
    annotations = ((change.desired or {}).get("metadata") or {}).get("annotations") or {}
    chosen = str(annotations.get(DRIFT_ANNOTATION, default))
    return chosen if chosen in MODES else default


def may_have_drifted(before: Mapping[str, Any] | None, after: Mapping[str, Any], manager: str = FIELD_MANAGER) -> bool:
    """True when a change seen on the watch may be drift; cheap enough for every event.

    Drift is a change to a field Moor applied, and the API server records every such change in
    managedFields: the field leaves Moor's set when someone else sets it to another value or removes
    it. So while Moor's own field set is the same, nothing Moor declared changed, whatever else did (a
    controller's annotations, replica counts, status). An object Moor holds no field set for counts as
    changed when anything beyond its status and the server's bookkeeping did.
    """
    if before is None:
        return False  # an object appearing is Moor's own create (or a relist): deletions are what drift
    mine_before, mine_after = applied_fields(before, manager), applied_fields(after, manager)
    if mine_before is None and mine_after is None:
        return _declared_part(before) != _declared_part(after)
    return _field_set(mine_before) != _field_set(mine_after) or _string_data_changed(before, after, mine_after)


def _string_data_changed(before: Mapping[str, Any], after: Mapping[str, Any], mine: Mapping[str, Any] | None) -> bool:
    """A Secret's key Moor declared in `stringData` changed in `data`. The server keeps Moor's field set
    under `f:stringData` but stores the value in `data`, so another writer's change to that key leaves
    Moor's set as it was."""
    if after.get("kind") != "Secret" or mine is None:
        return False
    declared = (mine.get("fieldsV1") or {}).get("f:stringData") or {}
    old, new = before.get("data") or {}, after.get("data") or {}
    return any(old.get(field[2:]) != new.get(field[2:]) for field in declared if field.startswith("f:"))


def _field_set(entry: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    return None if entry is None else (entry.get("apiVersion"), entry.get("fieldsV1"))


_BOOKKEEPING = frozenset({"resourceVersion", "managedFields", "generation"})


def _declared_part(obj: Mapping[str, Any]) -> tuple[Any, ...]:
    metadata = {key: value for key, value in (obj.get("metadata") or {}).items() if key not in _BOOKKEEPING}
    rest = {key: value for key, value in obj.items() if key not in ("metadata", "status")}
    return (metadata, rest)
