"""What the API's schema says about each field, so that comparison follows the server instead of names.

The API server publishes one OpenAPI v3 document per group-version (`/openapi/v3/apis/apps/v1`), built
from the Go types of built-in kinds and from the structural schemas of CustomResourceDefinitions. From
it the server's own merge logic (structured-merge-diff) takes how each list merges, and the built-in
types decide which values it rewrites. A `FieldSchema` answers the same questions for one field:

- list semantics: `x-kubernetes-list-type` (atomic, set, or map keyed by `x-kubernetes-list-map-keys`),
  else a `merge` `x-kubernetes-patch-strategy` (a map keyed by `x-kubernetes-patch-merge-key`, a set
  without one), else atomic;
- int-or-string: `x-kubernetes-int-or-string: true` (custom resources) or `format: int-or-string`
  (the built-in IntOrString), where `8080` and `"8080"` name the same thing;
- quantity: a reference to `io.k8s.apimachinery.pkg.api.resource.Quantity`, which the server stores in
  canonical form (`"0.5"` becomes `"500m"`);
- zero values: the Go types of built-in kinds drop `""`, `0`, `false`, `{}` and `[]` from optional
  fields, while custom resources (a document titled as the CRD builder titles it) are stored as sent,
  zero values and quantities alike, except their `metadata` (a Go type again).

A field the schema does not describe (`x-kubernetes-preserve-unknown-fields`, or simply absent) is
`UNTYPED`: its lists are atomic and its scalars compare exactly, as the server treats them. Nodes are
resolved on first use and kept, so a kind's schema costs one walk of the fields its objects use.
Pure: documents in, answers out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
CRD_DOCUMENT_TITLE = "Kubernetes CRD Swagger"
"""The `info.title` of the documents apiextensions-apiserver builds from CustomResourceDefinitions."""
_META_TYPES = "io.k8s.apimachinery."
"""The Go types a CRD's document refers to (ObjectMeta and its parts); a CRD's own definitions are named
after its group reversed, which may begin with `io.k8s.` too (`snapshot.storage.k8s.io`)."""
_REF_PREFIX = "#/components/schemas/"


class ListType(enum.Enum):
    ATOMIC = "atomic"
    SET = "set"
    MAP = "map"


class _Definitions:
    """The `components.schemas` of one group-version document, resolved into shared nodes by name."""

    def __init__(self, schemas: Mapping[str, Any], source: str, *, custom_resources: bool) -> None:
        self.schemas = schemas
        self.source = source
        self.custom_resources = custom_resources
        self.nodes: dict[str, FieldSchema] = {}

    def node(self, name: str) -> FieldSchema:
        known = self.nodes.get(name)
        if known is None:
            raw = self.schemas.get(name)
            stored_as_sent = self.custom_resources and not name.startswith(_META_TYPES)
            known = FieldSchema(raw if isinstance(raw, Mapping) else {}, self, name, keeps_zero_values=stored_as_sent)
            self.nodes[name] = known
        return known


def _reference(raw: Mapping[str, Any]) -> str | None:
    """The definition `raw` stands for: a `$ref`, or the single `$ref` of an `allOf` (how v3 adds a
    description or a default to a reference)."""
    ref = raw.get("$ref")
    if ref is None:
        parts = raw.get("allOf")
        if isinstance(parts, list) and len(parts) == 1 and isinstance(parts[0], Mapping):
            ref = parts[0].get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
        return ref[len(_REF_PREFIX) :]
    return None


def _list_type(raw: Mapping[str, Any]) -> tuple[ListType, tuple[str, ...]]:
    declared = raw.get("x-kubernetes-list-type")
    if declared == "map":
        keys = raw.get("x-kubernetes-list-map-keys")
        names = tuple(str(key) for key in keys) if isinstance(keys, list) else ()
        return (ListType.MAP, names) if names else (ListType.ATOMIC, ())
    if declared == "set":
        return ListType.SET, ()
    if declared is not None:
        return ListType.ATOMIC, ()
    strategy = raw.get("x-kubernetes-patch-strategy")
    if isinstance(strategy, str) and "merge" in strategy.split(","):
        key = raw.get("x-kubernetes-patch-merge-key")
        return (ListType.MAP, (key,)) if isinstance(key, str) and key else (ListType.SET, ())
    return ListType.ATOMIC, ()


class FieldSchema:
    """What the schema declares for one field; `field(name)` and `items` lead to the fields below it."""

    __slots__ = (
        "_definitions",
        "_fields",
        "_items",
        "_key_defaults",
        "_raw",
        "_values",
        "int_or_string",
        "keeps_zero_values",
        "list_keys",
        "list_type",
        "name",
        "quantity",
    )

    def __init__(
        self,
        raw: Mapping[str, Any],
        definitions: _Definitions | None,
        name: str = "",
        *,
        keeps_zero_values: bool = False,
    ) -> None:
        target = _reference(raw)
        if target is not None and definitions is not None:
            referred = definitions.schemas.get(target)
            merged = {**referred, **raw} if isinstance(referred, Mapping) else dict(raw)
            merged.pop("allOf", None)
            merged.pop("$ref", None)
            raw = merged
        self._raw = raw
        self._definitions = definitions
        self._fields: dict[str, FieldSchema] = {}
        self._items: FieldSchema | None = None
        self._values: FieldSchema | None = None
        self.name = name or (target or "")
        self.quantity = target == QUANTITY or name == QUANTITY
        self.int_or_string = raw.get("x-kubernetes-int-or-string") is True or raw.get("format") == "int-or-string"
        self.list_type, self.list_keys = _list_type(raw)
        self.keeps_zero_values = keeps_zero_values
        """True where the server stores values as sent (custom resources): a zero value is a value."""
        self._key_defaults: tuple[tuple[str, Any], ...] | None = None

    @property
    def source(self) -> str:
        """Which document this node comes from (its hash): comparisons made under it are valid while it is."""
        return self._definitions.source if self._definitions is not None else ""

    def _child(self, raw: Any) -> FieldSchema:
        if isinstance(raw, Mapping) and raw:
            target = _reference(raw)
            if target is not None and self._definitions is not None and not any(k.startswith("x-") for k in raw):
                return self._definitions.node(target)  # a bare reference (perhaps with a description): shared
            return FieldSchema(raw, self._definitions, keeps_zero_values=self.keeps_zero_values)
        return UNTYPED_AS_SENT if self.keeps_zero_values else UNTYPED

    def field(self, name: str) -> FieldSchema:
        """The schema of the property or map entry `name` (UNTYPED when the schema does not describe it)."""
        known = self._fields.get(name)
        if known is not None:
            return known
        properties = self._raw.get("properties")
        if isinstance(properties, Mapping) and name in properties:
            known = self._fields[name] = self._child(properties[name])
            return known
        return self.values  # one schema for every entry of a map: kept once, whatever names objects use

    @property
    def values(self) -> FieldSchema:
        """The schema of this map's entries (`additionalProperties`)."""
        if self._values is None:
            self._values = self._child(self._raw.get("additionalProperties"))
        return self._values

    @property
    def items(self) -> FieldSchema:
        """The schema of this list's items."""
        if self._items is None:
            self._items = self._child(self._raw.get("items"))
        return self._items

    @property
    def key_defaults(self) -> tuple[tuple[str, Any], ...]:
        """The defaults the schema declares for the key fields of this list-map's items."""
        if self._key_defaults is None:
            items = self.items
            self._key_defaults = tuple(
                (key, default) for key in self.list_keys if (default := items.default_of(key)) is not None
            )
        return self._key_defaults

    def default_of(self, name: str) -> Any:
        """The default the schema declares for property `name`, None without one."""
        properties = self._raw.get("properties")
        if not isinstance(properties, Mapping):
            return None
        declared = properties.get(name)
        if not isinstance(declared, Mapping):
            return None
        default = declared.get("default")
        return None if isinstance(default, Mapping | list) else default

    def __repr__(self) -> str:
        return f"FieldSchema({self.name or '<inline>'})"


UNTYPED = FieldSchema({}, None, "<untyped>")
"""A field the schema leaves open: lists atomic, scalars compared exactly."""
UNTYPED_AS_SENT = FieldSchema({}, None, "<untyped, stored as sent>", keeps_zero_values=True)
"""The same inside a custom resource (`x-kubernetes-preserve-unknown-fields`), where zero values are kept."""


@dataclass(frozen=True)
class GroupVersionSchema:
    """The schema of every kind of one group-version, from its OpenAPI v3 document."""

    api_version: str
    source: str
    """The document's hash (from the root document's `serverRelativeURL`)."""
    kinds: Mapping[str, str]
    """Kind -> definition name."""
    _definitions: _Definitions = field(repr=False, compare=False)

    @classmethod
    def from_document(cls, api_version: str, document: Mapping[str, Any], source: str) -> GroupVersionSchema:
        """Reads the kinds of `api_version` from its document (`components.schemas`)."""
        schemas = (document.get("components") or {}).get("schemas") or {}
        group, _, version = api_version.rpartition("/")
        kinds: dict[str, str] = {}
        for name, definition in schemas.items():
            if not isinstance(definition, Mapping):
                continue
            for gvk in definition.get("x-kubernetes-group-version-kind") or ():
                if isinstance(gvk, Mapping) and gvk.get("group", "") == group and gvk.get("version") == version:
                    kinds.setdefault(str(gvk.get("kind")), name)
        custom_resources = (document.get("info") or {}).get("title") == CRD_DOCUMENT_TITLE
        return cls(api_version, source, kinds, _Definitions(schemas, source, custom_resources=custom_resources))

    def kind(self, kind: str) -> FieldSchema | None:
        name = self.kinds.get(kind)
        return None if name is None else self._definitions.node(name)


@dataclass(frozen=True, eq=False)
class Schemas:
    """The schemas known for some group-versions; a kind without one is compared by field names."""

    group_versions: Mapping[str, GroupVersionSchema] = field(default_factory=dict)

    @classmethod
    def of(cls, group_versions: Iterable[GroupVersionSchema]) -> Schemas:
        return cls({schema.api_version: schema for schema in group_versions})

    def for_kind(self, api_version: str, kind: str) -> FieldSchema | None:
        """The schema of objects of `kind` in `api_version`, None when the API published none."""
        group_version = self.group_versions.get(api_version)
        return None if group_version is None else group_version.kind(kind)

    @property
    def identity(self) -> tuple[tuple[str, str], ...]:
        """Which documents these schemas come from: equal identities, equal answers."""
        return tuple(sorted((name, schema.source) for name, schema in self.group_versions.items()))
