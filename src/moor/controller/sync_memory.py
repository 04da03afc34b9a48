"""What a Sync's passes keep between them, so that a pass where nothing changed costs almost nothing.

A pass renders, plans and compares; each of these is kept with the inputs it came from and reused while
those inputs are the same: the render while the checkout, the spec and the decryption keys are; the
plan while the render, the Sync's live objects and its inventory are; each object's comparison while
its desired content and live resourceVersion are (`moor.plan.RememberedComparisons`). Nothing here
is a source of truth: a restarted controller starts with empty memories and computes everything again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moor.objects import ObjectRef
from moor.plan import DesiredSet, Plan, RememberedComparisons


@dataclass(frozen=True)
class RenderKey:
    """What a Sync's render depends on: the checkout (one per commit), the spec and the decryption keys."""

    root: str
    generation: int
    keys: str


@dataclass(frozen=True)
class PlanInputs:
    """Everything a plan depends on: the desired set (by identity), the live objects of the Sync (by their
    change count) and the inventory (by identity, see SyncMemory.inventory_of)."""

    desired: DesiredSet
    live_changes: int
    inventory: tuple[ObjectRef, ...]

    def same_as(self, other: PlanInputs) -> bool:
        return (
            self.desired is other.desired
            and self.live_changes == other.live_changes
            and self.inventory is other.inventory
        )


@dataclass
class SyncMemory:
    """What one Sync's passes keep between them, so that a pass where nothing changed costs almost nothing:
    the last render (reused while its RenderKey holds), the last plan (reused while its inputs are the
    same), the comparisons behind it (reused object by object) and the parsed inventory."""

    render_key: RenderKey | None = None
    desired: DesiredSet = field(default_factory=lambda: DesiredSet.of(()))
    plan_inputs: PlanInputs | None = None
    plan: Plan | None = None
    comparisons: RememberedComparisons = field(default_factory=RememberedComparisons)
    inventory_entries: list[Any] = field(default_factory=list)
    inventory: tuple[ObjectRef, ...] = ()

    def inventory_of(self, entries: list[Any]) -> tuple[ObjectRef, ...]:
        """The refs of a status inventory; the very same tuple while the entries are equal."""
        if entries != self.inventory_entries:
            self.inventory_entries = entries
            self.inventory = tuple(ObjectRef.from_dict(entry) for entry in entries)
        return self.inventory
