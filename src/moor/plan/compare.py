"""Desired against live: the fields where the cluster differs from what Git declares.

Moor compares locally so that a reconcile with nothing to do sends no request per object. The
comparison follows server-side apply: every value the desired object sets must be found in the live
object (extra live fields are other managers' business), lists are matched by their merge keys
(`moor.plan.lists`), values are compared as the server canonicalises them (`moor.plan.normalize`),
and fields Moor applied earlier but Git no longer declares are differences too, because the next
apply removes them. Which list is keyed by what, and which value is a quantity or an int-or-string,
comes from the kind's schema (`moor.plan.schema`) when the API published one.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from moor.objects import FIELD_MANAGER
from moor.plan.lists import AtomicList, ListMap, ScalarSet, list_semantics
from moor.plan.managed_fields import applied_fields, element_of
from moor.plan.normalize import comparable_desired, is_zero, key_values_equal, scalars_equal
from moor.plan.paths import ROOT, FieldPath, ListKey, PathElement, SetItem
from moor.plan.schema import FieldSchema


class _Absent:
    """The value of a field that is not there (distinct from an explicit null)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT: Final = _Absent()

# Never compared: identity, the server's bookkeeping, and status.
_SKIPPED_TOP_LEVEL = frozenset({"apiVersion", "kind", "status"})
_SERVER_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)
_MAX_VALUE_TEXT = 80


class DifferenceKind(enum.Enum):
    CHANGED = "changed"
    """Git and the cluster both set the field, to different values."""
    MISSING = "missing"
    """Git sets the field; the cluster does not have it."""
    REMOVED = "removed"
    """Moor applied the field before and Git no longer declares it; the cluster still has it."""


def _value_text(value: Any) -> str:
    if value is ABSENT:
        return "nothing"
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= _MAX_VALUE_TEXT else text[: _MAX_VALUE_TEXT - 1] + "…"


@dataclass(frozen=True)
class FieldDifference:
    """One field where live differs from desired: its path, the value Git declares and the value found."""

    path: FieldPath
    desired: Any
    live: Any
    kind: DifferenceKind
    sensitive: bool = False
    """True for Secret data: the values must never be shown."""

    def __str__(self) -> str:
        if self.sensitive:
            return f"{self.path}: {self.kind.value} (secret value not shown)"
        if self.kind is DifferenceKind.REMOVED:
            return f"{self.path}: no longer in Git, the cluster has {_value_text(self.live)}"
        return f"{self.path}: Git declares {_value_text(self.desired)}, the cluster has {_value_text(self.live)}"


def _is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


class _Comparison:
    def __init__(self, sensitive_roots: Sequence[FieldPath]) -> None:
        self.differences: list[FieldDifference] = []
        self._sensitive_roots = sensitive_roots

    def report(self, path: FieldPath, desired: Any, live: Any, kind: DifferenceKind) -> None:
        sensitive = any(path.startswith(root) for root in self._sensitive_roots)
        self.differences.append(FieldDifference(path, desired, live, kind, sensitive))

    def field(self, desired: Any, live: Any, path: FieldPath, schema: FieldSchema | None) -> None:
        if desired is None:
            return  # an explicit null declares nothing
        if live is ABSENT or live is None:
            # Built-in kinds drop zero values of optional fields; custom resources keep what they are sent.
            if not is_zero(desired) or (schema is not None and schema.keeps_zero_values):
                self.report(path, desired, ABSENT, DifferenceKind.MISSING)
            return
        self.value(desired, live, path, schema)

    def value(self, desired: Any, live: Any, path: FieldPath, schema: FieldSchema | None) -> None:
        """Compares the values at `path`, which `schema` describes (None: the kind has no schema)."""
        if isinstance(desired, Mapping):
            if not isinstance(live, Mapping):
                self.report(path, desired, live, DifferenceKind.CHANGED)
                return
            for key, child in desired.items():
                self.field(child, live.get(key, ABSENT), path / key, None if schema is None else schema.field(key))
        elif isinstance(desired, list):
            if not isinstance(live, list):
                self.report(path, desired, live, DifferenceKind.CHANGED)
                return
            self.compare_list(desired, live, path, schema)
        elif not scalars_equal(desired, live, path, schema):
            self.report(path, desired, live, DifferenceKind.CHANGED)

    def compare_list(self, desired: list[Any], live: list[Any], path: FieldPath, schema: FieldSchema | None) -> None:
        semantics = list_semantics(path.last_field_name, desired, live, schema)
        items = None if schema is None else schema.items
        if isinstance(semantics, ListMap):
            for item in desired:
                key = semantics.key_of(item)
                if key is None:  # list_semantics only picks keys every item carries
                    continue
                match = semantics.find(live, key)
                if match is None:
                    self.report(path / key, item, ABSENT, DifferenceKind.MISSING)
                else:  # name the item as the server does, e.g. with the defaulted protocol
                    self.value(item, match, path / (semantics.key_of(match) or key), items)
        elif isinstance(semantics, ScalarSet):
            for item in desired:
                if not any(scalars_equal(item, candidate, path, items) for candidate in live):
                    self.report(path / SetItem.of(item), item, ABSENT, DifferenceKind.MISSING)
        elif isinstance(semantics, AtomicList):
            self.atomic_list(desired, live, path, items)

    def atomic_list(self, desired: list[Any], live: list[Any], path: FieldPath, items: FieldSchema | None) -> None:
        if len(desired) != len(live):
            self.report(path, desired, live, DifferenceKind.CHANGED)
            return
        if all(not isinstance(item, Mapping | list) for item in desired):
            if not all(scalars_equal(w, h, path, items) for w, h in zip(desired, live, strict=True)):
                self.report(path, desired, live, DifferenceKind.CHANGED)
            return
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            if want is not None:
                self.value(want, have, path / index, items)


def lookup(obj: Any, path: FieldPath) -> Any:
    """The value at `path` in `obj`, or ABSENT (an explicit null counts as absent)."""
    node = obj
    for element in path.elements:
        node = _step(node, element)
        if node is ABSENT:
            return ABSENT
    return node


def _step(node: Any, element: PathElement) -> Any:
    """The child of `node` that `element` names, or ABSENT (an explicit null counts as absent)."""
    if isinstance(element, str):
        child = node.get(element, ABSENT) if isinstance(node, Mapping) else ABSENT
    elif not isinstance(node, list):
        return ABSENT
    elif isinstance(element, ListKey):
        child = ListMap.addressed_by(element).find(node, element)
    elif isinstance(element, SetItem):
        wanted = element.value
        child = next((item for item in node if key_values_equal(wanted, item)), ABSENT)
    else:
        child = node[element] if 0 <= element < len(node) else ABSENT
    return ABSENT if child is None else child


def _compared(path: FieldPath) -> bool:
    first = path.elements[0] if path.elements else None
    if first in _SKIPPED_TOP_LEVEL or not path.elements:
        return False
    if first == "metadata" and len(path.elements) > 1:
        return path.elements[1] not in _SERVER_METADATA
    return True


def _removed_fields(desired: Mapping[str, Any], live: Mapping[str, Any], manager: str) -> list[FieldPath]:
    """Fields the manager applied that desired no longer sets and live still has, outermost only.

    Walks the manager's `fieldsV1` trie alongside both objects, so a field Git still declares costs
    one step and nothing is parsed beyond what the manager owns."""
    entry = applied_fields(live, manager)
    if entry is None:
        return []
    if entry.get("apiVersion") and entry.get("apiVersion") != desired.get("apiVersion"):
        # The field set was recorded in another API version; its paths need not exist in this one.
        return []
    removed: list[FieldPath] = []

    def walk(fields: Mapping[str, Any], want: Any, have: Any, path: FieldPath) -> None:
        for key, child in fields.items():
            if key == ".":
                continue
            at = path / element_of(key)
            if len(at) <= 2 and not _compared(at):
                continue
            found = _step(have, at.elements[-1])
            if found is ABSENT:
                continue  # nothing in the cluster to remove, here or below
            wanted = ABSENT if want is ABSENT else _step(want, at.elements[-1])
            interior = isinstance(child, Mapping) and bool(child)
            if wanted is ABSENT and (not interior or "." in child):
                removed.append(at)
            elif interior:
                walk(child, wanted, found, at)

    walk(entry.get("fieldsV1") or {}, desired, live, ROOT)
    return sorted(removed, key=lambda p: (len(p), str(p)))


def compare(
    desired: Mapping[str, Any],
    live: Mapping[str, Any],
    *,
    manager: str = FIELD_MANAGER,
    schema: FieldSchema | None = None,
) -> list[FieldDifference]:
    """The fields where `live` differs from `desired` (a prepared object, see `prepare_desired`).

    Empty when applying `desired` would change nothing Moor cares about; each difference says where,
    what Git declares and what the cluster has. `schema` is the kind's schema (`Schemas.for_kind`);
    without one, list keys, quantities and int-or-strings are recognised by field names.
    """
    want = comparable_desired(desired)
    sensitive = [ROOT / "data", ROOT / "stringData"] if _is_secret(desired) else []
    comparison = _Comparison(sensitive)
    for key, value in want.items():
        if key in _SKIPPED_TOP_LEVEL:
            continue
        if key == "metadata" and isinstance(value, Mapping):
            value = {name: item for name, item in value.items() if name not in _SERVER_METADATA}
        comparison.field(value, live.get(key, ABSENT), ROOT / key, None if schema is None else schema.field(key))
    for path in _removed_fields(want, live, manager):
        comparison.report(path, ABSENT, lookup(live, path), DifferenceKind.REMOVED)
    return comparison.differences
