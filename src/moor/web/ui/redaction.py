"""What of an object may be shown: Secret values never; a Secret shows its keys and whether each differs from Git.

Every object the dashboard renders passes through `shown()`; there is no other way to an object's body.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from moor.objects import KubeObject

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
HIDDEN_METADATA = ("managedFields",)
CHANGED = "(secret value, differs from Git)"
UNCHANGED = "(secret value)"
SECRET_FIELDS = ("data", "stringData")


def is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def shown(obj: KubeObject, changed_keys: Collection[str] = ()) -> dict[str, Any]:
    """A copy of `obj` fit for a browser: managedFields left out; for a Secret every value replaced by a
    mark saying whether it differs from Git (`changed_keys`), and kubectl's last-applied copy dropped."""
    copy = dict(obj)
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in HIDDEN_METADATA}
    copy["metadata"] = metadata
    if not is_secret(obj):
        return copy
    for field in SECRET_FIELDS:
        values = obj.get(field)
        if isinstance(values, Mapping):
            copy[field] = {key: CHANGED if key in changed_keys else UNCHANGED for key in values}
        elif field in copy:
            copy[field] = UNCHANGED
    annotations = metadata.get("annotations")
    if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
        metadata["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return copy


def secret_keys(obj: Mapping[str, Any]) -> list[str]:
    """The keys a Secret holds (data and stringData), sorted."""
    keys: set[str] = set()
    for field in SECRET_FIELDS:
        values = obj.get(field)
        if isinstance(values, Mapping):
            keys.update(str(key) for key in values)
    return sorted(keys)
