"""A render's desired objects, with what every pass derives from them, computed once per render.

A Sync keeps its DesiredSet while its revision and spec stay the same, so its references, its
inventory and the kinds it touches cost nothing on the passes after the first.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from moor.objects import KubeObject, ObjectRef
from moor.plan.prepare import ensure_unique


@dataclass(frozen=True, eq=False)
class DesiredSet:
    objects: tuple[KubeObject, ...]
    refs: tuple[ObjectRef, ...]
    """One per object, in the same order."""

    @classmethod
    def of(cls, objects: Iterable[KubeObject]) -> DesiredSet:
        """Raises DuplicateObjectError when two objects name the same object."""
        kept = tuple(objects)
        ensure_unique(kept)
        return cls(kept, tuple(ObjectRef.of(obj) for obj in kept))

    def __len__(self) -> int:
        return len(self.objects)

    @functools.cached_property
    def fingerprints(self) -> tuple[str, ...]:
        """A digest of each object's content, in the same order: equal digests, equal objects."""
        return tuple(_fingerprint(obj) for obj in self.objects)

    @functools.cached_property
    def inventory(self) -> tuple[ObjectRef, ...]:
        """What the Sync's inventory holds once these objects are applied: sorted, one ref per object."""
        return tuple(new_inventory(self.objects))

    @functools.cached_property
    def inventory_entries(self) -> tuple[Mapping[str, Any], ...]:
        """`inventory` as status entries."""
        return tuple(ref.to_dict() for ref in self.inventory)


def _fingerprint(obj: KubeObject) -> str:
    text = json.dumps(obj, separators=(",", ":"), default=repr)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def new_inventory(desired: Iterable[Mapping[str, Any]]) -> list[ObjectRef]:
    """The inventory to record once `desired` is applied: one sorted ref per object."""
    return sorted({ObjectRef.of(obj) for obj in desired}, key=ObjectRef.sort_key)
