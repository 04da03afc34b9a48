"""What a conversion could not carry over, one line each, and the reading of a foreign spec that
notices every field it leaves behind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Note:
    """One field of one input object that has no place in the output, and why."""

    origin: str
    """The object it comes from: `Kustomization flux-system/apps`."""
    field: str
    why: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.field}: {self.why}"


def describe(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    namespace, name = metadata.get("namespace"), metadata.get("name") or "?"
    return f"{obj.get('kind')} {namespace}/{name}" if namespace else f"{obj.get('kind')} {name}"


@dataclass
class SpecReader:
    """A foreign object's spec, read field by field; `leftovers` notes every field nobody took, with
    the reason `reasons` gives for it (or that Moor has no such field)."""

    origin: str
    spec: Mapping[str, Any]
    reasons: Mapping[str, str] = field(default_factory=dict)
    prefix: str = "spec"
    _notes: list[Note] = field(default_factory=list)
    _taken: set[str] = field(default_factory=set)
    _children: list[SpecReader] = field(default_factory=list)

    def take(self, key: str, default: Any = None) -> Any:
        self._taken.add(key)
        return self.spec.get(key, default)

    def child(self, key: str, reasons: Mapping[str, str] | None = None) -> SpecReader:
        """The reader of the mapping at `key` (empty when absent), whose leftovers count as this one's."""
        value = self.take(key)
        reader = SpecReader(
            self.origin, value if isinstance(value, Mapping) else {}, reasons or {}, f"{self.prefix}.{key}"
        )
        self._children.append(reader)
        return reader

    def note(self, key: str, why: str) -> None:
        """Notes that `key` (taken, or a value of it) is not carried over, and why."""
        self._taken.add(key)
        self._notes.append(Note(self.origin, f"{self.prefix}.{key}", why))

    def leftovers(self) -> list[Note]:
        """The notes made, then one for each field not taken, then those of the children, in that order."""
        notes = list(self._notes)
        for key in sorted(set(self.spec) - self._taken):
            notes.append(Note(self.origin, f"{self.prefix}.{key}", self.reasons.get(key, _NO_SUCH_FIELD)))
        for child in self._children:
            notes.extend(child.leftovers())
        return notes


_NO_SUCH_FIELD = "Moor has no such field; not carried over"


def without_empty(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` without the keys whose value is None, an empty string, list or mapping."""
    return {key: value for key, value in values.items() if value not in (None, "", [], {})}
