"""Which Sync an object belongs to, read from the Syncs the controller watches.

An object belongs to the Sync its `moor.dev/sync` label names, for as long as that Sync still declares
it (lists it in `status.inventory`). A second Sync that declares the object does not write it: it
reports the conflict (`status.conflicts` and Ready=False OwnershipConflict) until the owner releases the
object, by leaving it out of Git or by being deleted, and then takes it over on its next pass. The owner
never prunes an object that another Sync is waiting for: it leaves it for that Sync to take over.
`spec.force: true` takes an object over at once (the former owner then reports the conflict).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from moor.controller.rendering import sync_key
from moor.objects import Identity, KubeObject, ObjectRef
from moor.plan import ObjectChange

CONFLICTS_FIELD = "conflicts"
"""The Sync status field listing the objects it declares but another Sync owns."""


def _identity(entry: Mapping[str, Any]) -> Identity:
    return (
        str(entry.get("group", "")),
        str(entry.get("kind", "")),
        str(entry.get("namespace", "")),
        str(entry.get("name", "")),
    )


@dataclass(frozen=True)
class Claims:
    """Answers ownership questions from the Syncs as the controller last saw them (no request)."""

    syncs: Callable[[], Iterable[KubeObject]]

    def _by_key(self, key: str) -> KubeObject | None:
        return next((sync for sync in self.syncs() if sync_key(sync) == key), None)

    def still_claimed(self, owner_key: str, identity: Identity) -> bool:
        """Whether the Sync labelled `owner_key` exists, is not being deleted, and still declares the object."""
        owner = self._by_key(owner_key)
        if owner is None or owner["metadata"].get("deletionTimestamp"):
            return False
        inventory = (owner.get("status") or {}).get("inventory") or []
        return any(_identity(entry) == identity for entry in inventory)

    def waiting_for(self, identity: Identity, me: str) -> str:
        """`namespace/name` of another Sync that declares the object and waits for it to be released, or ""."""
        for sync in self.syncs():
            if sync_key(sync) == me:
                continue
            conflicts = (sync.get("status") or {}).get(CONFLICTS_FIELD) or []
            if any(_identity(entry) == identity for entry in conflicts):
                ref = ObjectRef.of(sync)
                return f"{ref.namespace}/{ref.name}"
        return ""

    def owner_name(self, owner_key: str) -> str:
        """`namespace/name` of the Sync labelled `owner_key`, or the label value when it is not known."""
        owner = self._by_key(owner_key)
        if owner is None:
            return owner_key
        ref = ObjectRef.of(owner)
        return f"{ref.namespace}/{ref.name}"


def conflict_entries(contested: Iterable[ObjectChange], claims: Claims) -> list[dict[str, str]]:
    """`status.conflicts`: each contested object with the Sync that owns it."""
    return [
        {
            "group": change.ref.group,
            "version": change.ref.version,
            "kind": change.ref.kind,
            "namespace": change.ref.namespace,
            "name": change.ref.name,
            "owner": claims.owner_name(change.owner),
        }
        for change in contested
    ]


def conflict_message(revision: str, entries: list[dict[str, str]]) -> str:
    """The Ready condition's message for a pass that found objects another Sync owns."""
    listed = "; ".join(
        f"{entry['kind']} {entry['namespace'] + '/' if entry['namespace'] else ''}{entry['name']} "
        f"belongs to Sync {entry['owner']}"
        for entry in entries
    )
    count = len(entries)
    return (
        f"revision {revision}: {count} object{'s' if count != 1 else ''} declared here belong"
        f"{'s' if count == 1 else ''} to another Sync, so nothing was written: {listed}. Remove "
        f"{'it' if count == 1 else 'them'} from one of the two, or set spec.force: true here to take "
        f"{'it' if count == 1 else 'them'} over"
    )
