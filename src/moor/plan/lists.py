"""How lists are matched item by item, following the merge keys of server-side apply.

A list is a list-map (items are matched by their key fields, order does not matter, and other managers
may own extra items), a set of scalars, or atomic (compared position by position, and a different
length is a difference of the whole list), as the API's schema declares (`moor.plan.schema`). For a
kind the API published no schema for, the lists named below are list-maps or sets when their items
carry the key fields, and everything else is atomic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moor.plan.normalize import key_values_equal
from moor.plan.paths import ListKey
from moor.plan.schema import FieldSchema, ListType

# Without a schema: list field name -> candidate key sets; the first whose fields every item carries is used.
_LIST_MAP_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "containers": (("name",),),
    "initContainers": (("name",),),
    "ephemeralContainers": (("name",),),
    "volumes": (("name",),),
    "env": (("name",),),
    "ports": (("containerPort", "protocol"), ("port", "protocol")),
    "volumeMounts": (("mountPath",),),
    "volumeDevices": (("devicePath",),),
    "imagePullSecrets": (("name",),),
    "hostAliases": (("ip",),),
    "topologySpreadConstraints": (("topologyKey", "whenUnsatisfiable"),),
    "resourceClaims": (("name",),),
    "claims": (("name",),),
    "schedulingGates": (("name",),),
    "resizePolicy": (("resourceName",),),
    "ownerReferences": (("uid",),),
    "webhooks": (("name",),),
}
# Key fields the server defaults when an item leaves them out.
_KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}
_SET_LISTS = frozenset({"finalizers"})


@dataclass(frozen=True)
class ListMap:
    """A list whose items are matched by these key fields."""

    keys: tuple[str, ...]
    defaults: tuple[tuple[str, Any], ...] = ()
    """Values of key fields an item may leave out (the schema's defaults), besides the server's own."""

    @classmethod
    def addressed_by(cls, key: ListKey) -> ListMap:
        """The list-map a key from managedFields (`k:{...}`) addresses."""
        return cls(tuple(name for name, _ in key.fields))

    def key_of(self, item: Any) -> ListKey | None:
        """The item's key (with server defaults filled in), None when the item lacks a key field."""
        if not isinstance(item, Mapping):
            return None
        values: list[tuple[str, Any]] = []
        for name in self.keys:
            value = item.get(name)
            if value is None:
                value = next((default for key, default in self.defaults if key == name), _KEY_DEFAULTS.get(name))
            if value is None or isinstance(value, Mapping | list):
                return None
            values.append((name, value))
        return ListKey.of(values)

    def find(self, items: Sequence[Any], key: ListKey) -> Any | None:
        """The item of `items` with this key, None when there is none."""
        for item in items:
            candidate = self.key_of(item)
            if candidate is not None and _keys_match(candidate, key):
                return item
        return None


@dataclass(frozen=True)
class ScalarSet:
    """A list of scalars where only membership counts (e.g. finalizers)."""


@dataclass(frozen=True)
class AtomicList:
    """A list compared as a whole, position by position."""


ListSemantics = ListMap | ScalarSet | AtomicList


def _keys_match(a: ListKey, b: ListKey) -> bool:
    if len(a.fields) != len(b.fields):
        return False
    return all(
        name_a == name_b and key_values_equal(value_a, value_b)
        for (name_a, value_a), (name_b, value_b) in zip(a.fields, b.fields, strict=True)
    )


def _unique_keys(list_map: ListMap, items: Sequence[Any]) -> bool:
    seen: list[ListKey] = []
    for item in items:
        key = list_map.key_of(item)
        if key is None or any(_keys_match(key, other) for other in seen):
            return False
        seen.append(key)
    return True


def _scalars(items: Sequence[Any]) -> bool:
    return all(not isinstance(item, Mapping | list) for item in items)


def _declared_semantics(schema: FieldSchema, desired: Sequence[Any], live: Sequence[Any]) -> ListSemantics:
    if schema.list_type is ListType.MAP:
        list_map = ListMap(schema.list_keys, schema.key_defaults)
        if _unique_keys(list_map, desired) and _unique_keys(list_map, live):
            return list_map
    elif schema.list_type is ListType.SET and _scalars(desired):
        return ScalarSet()
    return AtomicList()


def list_semantics(
    field_name: str | None, desired: Sequence[Any], live: Sequence[Any], schema: FieldSchema | None = None
) -> ListSemantics:
    """How the list held by `field_name` is compared, given both sides' items: as `schema` declares, or
    (None: the kind has no schema) as the field's name suggests."""
    if schema is not None:
        return _declared_semantics(schema, desired, live)
    if field_name in _SET_LISTS and _scalars(desired):
        return ScalarSet()
    for keys in _LIST_MAP_KEYS.get(field_name or "", ()):
        list_map = ListMap(keys)
        if _unique_keys(list_map, desired) and _unique_keys(list_map, live):
            return list_map
    return AtomicList()
