"""Field paths: where a value sits inside a Kubernetes object, printed like a JSON pointer.

Notation (one segment per level, joined by `/`, the root is the empty path):

- a field of a map is its name: `/spec/replicas`, `/metadata/labels/app`;
- an item of a keyed list (a list-map, matched by merge keys as server-side apply does) is
  `key=value`, several keys joined by `,` in key-name order:
  `/spec/template/spec/containers/name=web/image`,
  `/spec/template/spec/containers/name=web/ports/containerPort=80,protocol=TCP`;
- an item of a set of scalars (e.g. finalizers) is its JSON value in brackets:
  `/metadata/finalizers/["example.com/cleanup"]` (printed with `/` escaped, see below);
- an item of a plain (atomic) list is its position: `/spec/tolerations/0/key`.

In names and values `~` is written `~0` and `/` is written `~1`, as in RFC 6901, so the annotation
`moor.dev/prune` is `/metadata/annotations/moor.dev~1prune`. Key values print as they are (strings bare,
numbers and booleans as JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Scalar = str | int | float | bool | None


def _escape(text: str) -> str:
    return text.replace("~", "~0").replace("/", "~1")


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class ListKey:
    """A list item named by the values of its merge keys, e.g. `name=web` or `containerPort=80,protocol=TCP`."""

    fields: tuple[tuple[str, Scalar], ...]

    @classmethod
    def of(cls, keys: Iterable[tuple[str, Any]]) -> ListKey:
        return cls(tuple(sorted(keys)))

    def __str__(self) -> str:
        return ",".join(f"{_escape(name)}={_escape(_scalar_text(value))}" for name, value in self.fields)


@dataclass(frozen=True)
class SetItem:
    """A member of a set-like list of scalars, named by its JSON value, e.g. `["example.com/cleanup"]`."""

    json_value: str

    @classmethod
    def of(cls, value: Any) -> SetItem:
        return cls(json.dumps(value, separators=(",", ":"), sort_keys=True))

    @property
    def value(self) -> Any:
        return json.loads(self.json_value)

    def __str__(self) -> str:
        return f"[{_escape(self.json_value)}]"


PathElement = str | int | ListKey | SetItem
"""A field name (str), a position in an atomic list (int), a keyed list item, or a set member."""


def _element_text(element: PathElement) -> str:
    if isinstance(element, str):
        return _escape(element)
    return str(element)


@dataclass(frozen=True)
class FieldPath:
    """The location of one field in an object; `str()` gives the notation described in this module."""

    elements: tuple[PathElement, ...] = ()

    @classmethod
    def of(cls, *elements: PathElement) -> FieldPath:
        return cls(tuple(elements))

    def __truediv__(self, element: PathElement) -> FieldPath:
        return FieldPath((*self.elements, element))

    def __str__(self) -> str:
        return "".join("/" + _element_text(element) for element in self.elements)

    def __len__(self) -> int:
        return len(self.elements)

    @property
    def parent(self) -> FieldPath:
        return FieldPath(self.elements[:-1])

    @property
    def last_field_name(self) -> str | None:
        """The name of the innermost map field on this path (list positions and keys are skipped)."""
        for element in reversed(self.elements):
            if isinstance(element, str):
                return element
        return None

    def startswith(self, prefix: FieldPath) -> bool:
        """True when `prefix` is this path or one of its ancestors."""
        return self.elements[: len(prefix.elements)] == prefix.elements

    def is_within(self, prefix: FieldPath | str) -> bool:
        """True when this path is `prefix` or lies under it; a string prefix is compared in printed form."""
        if isinstance(prefix, FieldPath):
            return self.startswith(prefix)
        text, wanted = str(self), prefix.rstrip("/")
        return wanted == "" or text == wanted or text.startswith(wanted + "/")


ROOT = FieldPath()


def split_printed_path(text: str) -> list[str]:
    """`/spec/template/spec/containers/name=web/image` -> its segments, unescaped."""
    segments = [segment for segment in text.split("/") if segment != ""]
    return [segment.replace("~1", "/").replace("~0", "~") for segment in segments]
