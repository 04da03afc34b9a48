"""Kubernetes objects as plain dicts: their identity and the conventions Moor stamps on them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KubeObject = dict[str, Any]
Identity = tuple[str, str, str, str]
"""An object's identity across API versions: (group, kind, namespace, name), as `ObjectRef.identity` gives it."""

FIELD_MANAGER = "moor"
SYNC_LABEL = "moor.dev/sync"
RECONCILE_ANNOTATION = "moor.dev/reconcile"
PRUNE_ANNOTATION = "moor.dev/prune"
PRUNE_DISABLED = "disabled"
DRIFT_ANNOTATION = "moor.dev/drift"


def split_api_version(api_version: str) -> tuple[str, str]:
    """`apps/v1` -> (`apps`, `v1`); `v1` -> (``, `v1`)."""
    group, _, version = api_version.rpartition("/")
    return group, version


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Names one object in a cluster. Two refs that differ only in version name the same object."""

    group: str
    version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        group, version = split_api_version(str(obj.get("apiVersion", "")))
        metadata = obj.get("metadata") or {}
        return cls(
            group=group,
            version=version,
            kind=str(obj.get("kind", "")),
            namespace=str(metadata.get("namespace") or ""),
            name=str(metadata.get("name", "")),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObjectRef:
        """Reads an inventory entry as stored in a Sync's status."""
        return cls(
            group=str(data.get("group", "")),
            version=str(data.get("version", "")),
            kind=str(data["kind"]),
            namespace=str(data.get("namespace", "")),
            name=str(data["name"]),
        )

    def to_dict(self) -> dict[str, str]:
        entry = {"group": self.group, "version": self.version, "kind": self.kind, "name": self.name}
        if self.namespace:
            entry["namespace"] = self.namespace
        return entry

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def sort_key(self) -> tuple[str, str, str, str, str]:
        """The fields in the order `<` compares them: sorting by this key gives the same order, faster."""
        return (self.group, self.version, self.kind, self.namespace, self.name)

    @property
    def identity(self) -> Identity:
        """The object's identity across API versions: (group, kind, namespace, name)."""
        return (self.group, self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{kind} {where}{self.name}"
