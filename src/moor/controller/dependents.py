"""Which Syncs use a source or depend on another Sync, kept up to date from the Syncs' changes.

A source's new revision, or a Sync's new Ready status, wakes the Syncs that use it. Looking them up
here costs as much as the Syncs it finds; scanning every Sync instead made each of N Syncs' status
changes cost N, so N Syncs created at once took time in N².
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Generic, TypeVar

from moor.resources import GITREPOSITORY, SYNC

Target = tuple[str, str, str]
"""(kind, namespace, name) of a source or of a Sync that others depend on."""

K = TypeVar("K", bound=Hashable)


def targets_of(sync: Mapping[str, Any]) -> frozenset[Target]:
    """The source a Sync's spec names (a GitRepository unless it says otherwise) and the Syncs it depends
    on, each in the Sync's own namespace unless it names another."""
    spec = sync.get("spec") or {}
    namespace = str((sync.get("metadata") or {}).get("namespace", ""))
    found: set[Target] = set()
    source = spec.get("sourceRef") or {}
    if source.get("name"):
        kind = str(source.get("kind") or GITREPOSITORY.kind)
        found.add((kind, str(source.get("namespace") or namespace), str(source["name"])))
    for dependency in spec.get("dependsOn") or []:
        if isinstance(dependency, Mapping) and dependency.get("name"):
            found.add((SYNC.kind, str(dependency.get("namespace") or namespace), str(dependency["name"])))
    return frozenset(found)


class Dependents(Generic[K]):
    """An index from each source or Sync to the keys of the Syncs that use it."""

    def __init__(self) -> None:
        self._by_target: dict[Target, set[K]] = {}
        self._targets: dict[K, frozenset[Target]] = {}

    def update(self, key: K, sync: Mapping[str, Any]) -> None:
        """The Sync `key` was seen as `sync` (added or changed)."""
        targets = targets_of(sync)
        previous = self._targets.get(key, frozenset())
        if targets == previous:
            return
        self._unlink(key, previous - targets)
        for target in targets - previous:
            self._by_target.setdefault(target, set()).add(key)
        self._targets[key] = targets

    def remove(self, key: K) -> None:
        """The Sync `key` was deleted."""
        self._unlink(key, self._targets.pop(key, frozenset()))

    def of(self, kind: str, namespace: str, name: str) -> frozenset[K]:
        """The Syncs that use the source, or depend on the Sync, `kind` `namespace`/`name`."""
        return frozenset(self._by_target.get((kind, namespace, name), ()))

    def _unlink(self, key: K, targets: frozenset[Target]) -> None:
        for target in targets:
            users = self._by_target.get(target)
            if users is not None:
                users.discard(key)
                if not users:
                    del self._by_target[target]
