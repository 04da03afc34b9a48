"""Writing a Moor object's status: only when it changed, as one merge patch of the status subresource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moor.cluster.api import KubeApi
from moor.objects import KubeObject, ObjectRef


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch turning status `old` into `new` (top-level keys; lists replace whole), or None if equal."""
    patch: dict[str, Any] = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch or None


async def write_status(api: KubeApi, obj: KubeObject, new_status: Mapping[str, Any]) -> KubeObject:
    """Patches `obj`'s status to `new_status` if it differs; returns the object as the server has it."""
    patch = status_patch(obj.get("status") or {}, new_status)
    if patch is None:
        return obj
    return await api.merge_patch(ObjectRef.of(obj), {"status": patch}, subresource="status")
