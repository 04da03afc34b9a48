"""The plan of one reconcile: which objects to create, update, leave alone, prune or keep.

Pruning only ever touches objects Moor recorded in the Sync's inventory and still sees in the live
cache. An object is kept instead of pruned when its live copy carries `moor.dev/prune: disabled`: the
live copy is what Git last declared (Moor applied the annotation from Git) or what an operator set by
hand to protect it, and the desired copy no longer exists by the time an object is a prune candidate.
Kept objects leave the inventory (`new_inventory` only lists desired objects), so Moor stops managing
them, as Flux does. Objects already being deleted are neither pruned again nor kept.

An object belongs to one Sync: the one its `moor.dev/sync` label names. A desired object that is live
and labelled for another Sync which still declares it is contested: it is not written (and so never
flips between two Syncs) unless this Sync takes objects over (`spec.force`). The owner releases it by
no longer declaring it (it left the owner's Git, or the owner is gone), and the next pass takes it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moor.objects import PRUNE_ANNOTATION, PRUNE_DISABLED, SYNC_LABEL, Identity, KubeObject, ObjectRef
from moor.ordering import in_deletion_order
from moor.plan.compare import FieldDifference, compare
from moor.plan.desired_set import DesiredSet
from moor.plan.remembered import RememberedComparisons
from moor.plan.schema import Schemas


class Action(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    PRUNE = "prune"
    KEEP = "keep"
    CONTESTED = "contested"


StillClaimed = Callable[[str, Identity], bool]
"""Whether the Sync whose `moor.dev/sync` label value is given still declares the object."""
WaitingFor = Callable[[Identity], str]
"""The name of another Sync that declares the object and waits to take it over, or ""."""


@dataclass(frozen=True)
class ObjectChange:
    """What the plan does with one object, and why."""

    action: Action
    ref: ObjectRef
    desired: KubeObject | None = None
    live: KubeObject | None = None
    differences: tuple[FieldDifference, ...] = ()
    reason: str = ""
    """For KEEP: why the object is not pruned; for CONTESTED: which Sync owns it."""
    owner: str = ""
    """For CONTESTED: the `moor.dev/sync` label value of the Sync that owns the object."""

    def __str__(self) -> str:
        text = f"{self.ref}: {self.action.value}"
        return f"{text} ({self.reason})" if self.reason else text


@dataclass(frozen=True)
class Plan:
    """Every decision of one reconcile.

    `changes` holds creates, updates and unchanged objects in apply order (the order of the desired
    objects), then prunes in deletion order, then kept objects.
    """

    changes: tuple[ObjectChange, ...]

    def _with(self, action: Action) -> tuple[ObjectChange, ...]:
        return tuple(change for change in self.changes if change.action is action)

    @property
    def creates(self) -> tuple[ObjectChange, ...]:
        return self._with(Action.CREATE)

    @property
    def updates(self) -> tuple[ObjectChange, ...]:
        return self._with(Action.UPDATE)

    @property
    def unchanged(self) -> tuple[ObjectChange, ...]:
        return self._with(Action.UNCHANGED)

    @property
    def prunes(self) -> tuple[ObjectChange, ...]:
        return self._with(Action.PRUNE)

    @property
    def kept(self) -> tuple[ObjectChange, ...]:
        return self._with(Action.KEEP)

    @property
    def contested(self) -> tuple[ObjectChange, ...]:
        """Desired objects that another Sync owns: not written by this plan."""
        return self._with(Action.CONTESTED)

    @property
    def writes(self) -> tuple[ObjectChange, ...]:
        """Creates and updates in apply order: the objects to send to the API server."""
        return tuple(c for c in self.changes if c.action in (Action.CREATE, Action.UPDATE))

    @property
    def has_changes(self) -> bool:
        """True when applying this plan sends any write or delete."""
        return any(c.action in (Action.CREATE, Action.UPDATE, Action.PRUNE) for c in self.changes)

    def summary(self) -> str:
        """One line for status messages, e.g. "2 to create, 1 to update, 3 to prune"."""
        parts = [
            f"{len(group)} {label}"
            for group, label in (
                (self.creates, "to create"),
                (self.updates, "to update"),
                (self.prunes, "to prune"),
                (self.kept, "kept from pruning"),
                (self.contested, "owned by another Sync"),
            )
            if group
        ]
        if not self.has_changes:
            count = len(self.unchanged)
            parts.insert(0, f"no changes ({count} object{'s' if count != 1 else ''} up to date)")
        return ", ".join(parts)


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _prune_candidate(
    ref: ObjectRef, live: KubeObject, sync_key: str | None, waiting_for: WaitingFor | None
) -> ObjectChange | None:
    if (live.get("metadata") or {}).get("deletionTimestamp"):
        return None
    successor = waiting_for(ref.identity) if waiting_for is not None else ""
    if successor:
        return ObjectChange(Action.KEEP, ref, live=live, reason=f"declared by Sync {successor}, which takes it over")
    if _annotations(live).get(PRUNE_ANNOTATION) == PRUNE_DISABLED:
        reason = f"annotated {PRUNE_ANNOTATION}: {PRUNE_DISABLED}"
        return ObjectChange(Action.KEEP, ref, live=live, reason=reason)
    owner = _labels(live).get(SYNC_LABEL)
    if sync_key is not None and owner != sync_key:
        reason = f"now labelled {SYNC_LABEL}: {owner}" if owner else f"no longer labelled {SYNC_LABEL}"
        return ObjectChange(Action.KEEP, ref, live=live, reason=reason)
    return ObjectChange(Action.PRUNE, ref, live=live)


def _owner_elsewhere(
    live: KubeObject, identity: Identity, sync_key: str | None, still_claimed: StillClaimed | None
) -> str:
    """The label value of another Sync that owns `live` and still declares it, or ""."""
    owner = str(_labels(live).get(SYNC_LABEL) or "")
    if sync_key is None or still_claimed is None or not owner or owner == sync_key:
        return ""
    return owner if still_claimed(owner, identity) else ""


def plan_changes(
    desired: Sequence[KubeObject] | DesiredSet,
    live: Mapping[Identity, KubeObject],
    inventory: Iterable[ObjectRef],
    *,
    sync_key: str | None = None,
    remembered: RememberedComparisons | None = None,
    schemas: Schemas | None = None,
    still_claimed: StillClaimed | None = None,
    waiting_for: WaitingFor | None = None,
    take_over: bool = False,
) -> Plan:
    """Decides what to write and what to delete, comparing prepared desired objects with the live cache.

    `live` maps `ObjectRef.identity` to the cached object; `inventory` is what the Sync applied last
    time. With `sync_key`, a live object labelled for another Sync (or no longer labelled) is never
    pruned. With `remembered`, comparisons whose two sides did not change since its last pass are
    reused. `schemas` are the API's schemas of the desired kinds (a kind without one is compared by
    field names). With `sync_key` and `still_claimed`, a desired object labelled for another Sync that
    still declares it is CONTESTED, unless `take_over`; with `waiting_for`, an object another Sync waits
    for is kept instead of pruned, left for that Sync to take over. Raises DuplicateObjectError when two desired
    objects name the same object.
    """
    if not isinstance(desired, DesiredSet):
        desired = DesiredSet.of(desired)
    changes: list[ObjectChange] = []
    wanted: set[Identity] = set()
    fingerprints = desired.fingerprints if remembered is not None else ("",) * len(desired)
    for obj, ref, fingerprint in zip(desired.objects, desired.refs, fingerprints, strict=True):
        wanted.add(ref.identity)
        current = live.get(ref.identity)
        if current is None:
            changes.append(ObjectChange(Action.CREATE, ref, desired=obj))
            continue
        owner = "" if take_over else _owner_elsewhere(current, ref.identity, sync_key, still_claimed)
        if owner:
            reason = f"managed by the Sync labelled {SYNC_LABEL}={owner}"
            changes.append(ObjectChange(Action.CONTESTED, ref, desired=obj, live=current, reason=reason, owner=owner))
            continue
        schema = None if schemas is None else schemas.for_kind(ref.api_version, ref.kind)
        if remembered is not None:
            differences = remembered.compare(ref.identity, fingerprint, obj, current, schema)
        else:
            differences = tuple(compare(obj, current, schema=schema))
        action = Action.UPDATE if differences else Action.UNCHANGED
        changes.append(ObjectChange(action, ref, desired=obj, live=current, differences=differences))

    leftovers: dict[Identity, ObjectRef] = {}
    for ref in inventory:
        if ref.identity not in wanted and ref.identity in live:
            leftovers.setdefault(ref.identity, ref)
    in_order = in_deletion_order(leftovers.values())
    candidates = (_prune_candidate(ref, live[ref.identity], sync_key, waiting_for) for ref in in_order)
    decided = [change for change in candidates if change is not None]
    changes.extend(change for change in decided if change.action is Action.PRUNE)
    changes.extend(change for change in decided if change.action is Action.KEEP)
    if remembered is not None:
        remembered.end_pass()
    return Plan(tuple(changes))
