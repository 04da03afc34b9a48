"""Drift: differences on objects Moor already applied, attributed to the manager that made them.

A difference is attributed to the most recent manager other than Moor that holds the field (or an
atomic ancestor of it, or parts of it). A field someone deleted has no holder; it is attributed to
the most recent other manager that wrote the object after Moor last applied it, marked `inferred`;
without one the manager is unknown (empty).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from moor.objects import FIELD_MANAGER, KubeObject, ObjectRef
from moor.plan.compare import FieldDifference
from moor.plan.lists import ListMap
from moor.plan.managed_fields import APPLY, FieldOwner, ManagedFields
from moor.plan.normalize import key_values_equal
from moor.plan.paths import split_printed_path


@dataclass(frozen=True)
class Drift:
    """Fields of one object changed by one manager, as recorded in a Sync's status."""

    ref: ObjectRef
    paths: tuple[str, ...]
    manager: str
    operation: str = ""
    at: str = ""
    inferred: bool = False
    """True when no manager holds the fields (they were deleted) and the manager is a best guess."""

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"group": self.ref.group, "kind": self.ref.kind, "name": self.ref.name}
        if self.ref.namespace:
            entry["namespace"] = self.ref.namespace
        entry["paths"] = list(self.paths)
        entry["manager"] = self.manager or "unknown"
        if self.at:
            entry["at"] = self.at
        return entry

    def __str__(self) -> str:
        who = self.manager or "an unknown manager"
        if self.inferred and self.manager:
            who = f"probably {who}"
        when = f" at {self.at}" if self.at else ""
        return f"{self.ref}: {', '.join(self.paths)} changed by {who}{when}"


def _latest_writer_since_apply(fields: ManagedFields, manager: str) -> FieldOwner | None:
    own = fields.entry(manager, APPLY)
    since = own.time if own else ""
    others = [
        FieldOwner(entry.manager, entry.operation, entry.time, entry.subresource)
        for entry in fields.entries
        if entry.manager != manager and entry.subresource == "" and entry.time >= since
    ]
    return max(others, key=lambda owner: owner.time, default=None)


def attribute_drift(
    live: Mapping[str, Any], differences: Iterable[FieldDifference], *, manager: str = FIELD_MANAGER
) -> list[Drift]:
    """Groups an object's differences by the manager that most likely caused them, newest first."""
    ref = ObjectRef.of(live)
    fields = ManagedFields.of(live)
    fallback = _latest_writer_since_apply(fields, manager)
    groups: dict[tuple[str, str, str, bool], list[str]] = {}
    for difference in differences:
        holders = [owner for owner in fields.owners_of(difference.path) if owner.manager != manager]
        if holders:
            key = (holders[0].manager, holders[0].operation, holders[0].time, False)
        elif fallback is not None:
            key = (fallback.manager, fallback.operation, fallback.time, True)
        else:
            key = ("", "", "", False)
        groups.setdefault(key, []).append(str(difference.path))
    drifts = [
        Drift(ref, tuple(paths), manager=who, operation=operation, at=at, inferred=inferred)
        for (who, operation, at, inferred), paths in groups.items()
    ]
    return sorted(drifts, key=lambda drift: drift.at, reverse=True)


def without_ignored(differences: Iterable[FieldDifference], ignored: Iterable[str]) -> list[FieldDifference]:
    """Differences not at or under any of the `ignored` paths (printed notation, e.g. `/spec/replicas`)."""
    prefixes = list(ignored)
    return [d for d in differences if not any(d.path.is_within(prefix) for prefix in prefixes)]


def _remove(node: Any, segments: list[str]) -> None:
    head, rest = segments[0], segments[1:]
    if isinstance(node, dict):
        if head not in node:
            return
        if rest:
            _remove(node[head], rest)
        else:
            del node[head]
        return
    if not isinstance(node, list):
        return
    index = _list_index(node, head)
    if index is None:
        return
    if rest:
        _remove(node[index], rest)
    else:
        del node[index]


def _list_index(items: list[Any], segment: str) -> int | None:
    if segment.isdigit():
        position = int(segment)
        return position if position < len(items) else None
    if segment.startswith("[") and segment.endswith("]"):
        try:
            wanted = json.loads(segment[1:-1])
        except ValueError:
            return None
        return next((i for i, item in enumerate(items) if key_values_equal(wanted, item)), None)
    pairs = [part.partition("=") for part in segment.split(",")]
    if not all(sep for _, sep, _ in pairs):
        return None
    list_map = ListMap(tuple(name for name, _, _ in pairs))
    for index, item in enumerate(items):
        key = list_map.key_of(item)
        if key is not None and all(
            key_values_equal(value, text) for (_, value), (_, _, text) in zip(key.fields, sorted(pairs), strict=True)
        ):
            return index
    return None


def remove_fields(obj: Mapping[str, Any], paths: Iterable[str]) -> KubeObject:
    """A copy of `obj` without the fields at `paths`, so that applying it leaves them to their owners."""
    trimmed: KubeObject = copy.deepcopy(dict(obj))
    for path in paths:
        segments = split_printed_path(path)
        if segments:
            _remove(trimmed, segments)
    return trimmed
