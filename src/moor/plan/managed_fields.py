"""Who owns which field: `metadata.managedFields` read into sets of field paths.

Each entry of managedFields records, for one field manager and operation (`Apply` for server-side
apply, `Update` for everything else), the fields it set, encoded as a `fieldsV1` trie whose keys are
`f:<field>`, `k:<json merge keys>`, `v:<json value>`, `i:<index>` or `.` (the node itself). The plan
uses Moor's own `Apply` set to find fields Git no longer declares, and the other entries to say who
changed a drifted field and when.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moor.objects import FIELD_MANAGER
from moor.plan.paths import ROOT, FieldPath, ListKey, PathElement, SetItem

APPLY = "Apply"
UPDATE = "Update"


@functools.lru_cache(maxsize=4096)
def element_of(key: str) -> PathElement:
    """The path element one `fieldsV1` key names (keys repeat across objects, hence the cache)."""
    prefix, _, rest = key.partition(":")
    if prefix == "f":
        return rest
    if prefix == "k":
        keys = json.loads(rest)
        if isinstance(keys, dict):
            return ListKey.of(keys.items())
    elif prefix == "v":
        return SetItem.of(json.loads(rest))
    elif prefix == "i" and rest.lstrip("-").isdigit():
        return int(rest)
    # Not an encoding this version knows: keep the raw key so the path still prints recognisably.
    return key


def parse_fields_v1(fields: Mapping[str, Any] | None) -> frozenset[FieldPath]:
    """Every path a `fieldsV1` trie names: its leaves and the nodes marked with `.`."""
    members: set[FieldPath] = set()

    def walk(node: Mapping[str, Any], prefix: FieldPath) -> None:
        for key, child in node.items():
            if key == ".":
                members.add(prefix)
                continue
            path = prefix / element_of(key)
            if isinstance(child, Mapping) and child:
                walk(child, path)
            else:
                members.add(path)

    walk(fields or {}, ROOT)
    return frozenset(members)


def _interior_of(members: frozenset[FieldPath]) -> frozenset[FieldPath]:
    interior: set[FieldPath] = set()
    for path in members:
        for depth in range(len(path.elements)):
            interior.add(FieldPath(path.elements[:depth]))
    return frozenset(interior)


@dataclass(frozen=True)
class ManagedFieldsEntry:
    """The fields one manager set with one operation, and when it last did."""

    manager: str
    operation: str
    api_version: str
    time: str
    subresource: str
    fields: frozenset[FieldPath]
    _interior: frozenset[FieldPath] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> ManagedFieldsEntry:
        fields = parse_fields_v1(entry.get("fieldsV1"))
        return cls(
            manager=str(entry.get("manager", "")),
            operation=str(entry.get("operation", "")),
            api_version=str(entry.get("apiVersion", "")),
            time=str(entry.get("time") or ""),
            subresource=str(entry.get("subresource", "")),
            fields=fields,
            _interior=_interior_of(fields),
        )

    def owns(self, path: FieldPath) -> bool:
        """True when this entry set `path` itself, or an atomic ancestor of it (a leaf with no parts listed)."""
        if path in self.fields:
            return True
        for depth in range(len(path.elements) - 1, 0, -1):
            ancestor = FieldPath(path.elements[:depth])
            if ancestor in self.fields:
                return ancestor not in self._interior
        return False

    def owns_within(self, path: FieldPath) -> bool:
        """True when this entry set some field under `path` (used for whole items or maps)."""
        return path in self._interior


def applied_fields(obj: Mapping[str, Any], manager: str = FIELD_MANAGER) -> Mapping[str, Any] | None:
    """The raw managedFields entry of `manager`'s server-side applies to the object itself, unparsed."""
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if (
            isinstance(entry, Mapping)
            and entry.get("manager") == manager
            and entry.get("operation") == APPLY
            and not entry.get("subresource")
        ):
            return entry
    return None


@dataclass(frozen=True)
class FieldOwner:
    """One manager holding a field: what drift attribution reports."""

    manager: str
    operation: str
    time: str
    subresource: str = ""

    def __str__(self) -> str:
        when = f" at {self.time}" if self.time else ""
        return f"{self.manager} ({self.operation}){when}"


@dataclass(frozen=True)
class ManagedFields:
    """An object's managedFields, parsed."""

    entries: tuple[ManagedFieldsEntry, ...]

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ManagedFields:
        raw = (obj.get("metadata") or {}).get("managedFields") or []
        return cls(tuple(ManagedFieldsEntry.from_dict(entry) for entry in raw if isinstance(entry, Mapping)))

    def entry(
        self, manager: str = FIELD_MANAGER, operation: str = APPLY, subresource: str = ""
    ) -> ManagedFieldsEntry | None:
        for candidate in self.entries:
            if (candidate.manager, candidate.operation, candidate.subresource) == (
                manager,
                operation,
                subresource,
            ):
                return candidate
        return None

    def fields_of(
        self, manager: str = FIELD_MANAGER, operation: str = APPLY, subresource: str = ""
    ) -> frozenset[FieldPath]:
        """The field set one manager owns through one operation (empty when it owns nothing)."""
        found = self.entry(manager, operation, subresource)
        return found.fields if found else frozenset()

    def owners_of(self, path: FieldPath) -> tuple[FieldOwner, ...]:
        """Managers holding `path`, an atomic ancestor of it, or parts of it; the most recent first."""
        owners = [
            FieldOwner(entry.manager, entry.operation, entry.time, entry.subresource)
            for entry in self.entries
            if entry.owns(path) or entry.owns_within(path)
        ]
        return tuple(sorted(owners, key=lambda owner: owner.time, reverse=True))
