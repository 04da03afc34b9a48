"""The durable history of a Sync: one SyncRecord per attempt to deploy, in the Sync's namespace.

A record is created when an attempt starts writing (result InProgress) and completed when it ends,
so a controller killed in between leaves an InProgress record that the next attempt closes as
Interrupted: no attempt is lost and none is recorded twice. Records are numbered per Sync; the
status keeps the last number. Repeated failures of the same revision for the same reason update one
record (`attempts` counts them) instead of piling up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moor.cluster.api import KubeApi
from moor.cluster.client import ApiError
from moor.names import LABEL_VALUE_MAX, fit_name
from moor.objects import KubeObject, ObjectRef
from moor.resources import API_VERSION, GROUP, SYNC_RECORD, VERSION

IN_PROGRESS = "InProgress"
INTERRUPTED = "Interrupted"
SYNC_NAME_LABEL = "moor.dev/sync-name"
DEFAULT_RETENTION = 500


def record_name(sync_name: str, sequence: int) -> str:
    """`<sync>.000042`; a Sync name too long for that is shortened with a hash, so no two Syncs share records."""
    return fit_name(sync_name, f".{sequence:06d}")


def sync_name_label(sync_name: str) -> str:
    """The value of `moor.dev/sync-name` on a Sync's records: its name, shortened with a hash if too long."""
    return fit_name(sync_name, limit=LABEL_VALUE_MAX)


def record_ref(namespace: str, sync_name: str, sequence: int) -> ObjectRef:
    return ObjectRef(GROUP, VERSION, SYNC_RECORD.kind, namespace, record_name(sync_name, sequence))


@dataclass(frozen=True)
class OpenRecord:
    ref: ObjectRef
    sequence: int


class HistoryStore:
    def __init__(self, api: KubeApi, retention: int = DEFAULT_RETENTION) -> None:
        self.api = api
        self.retention = retention

    async def open(self, sync: KubeObject, last_sequence: int, fields: Mapping[str, Any]) -> OpenRecord:
        """Creates the next record (InProgress); closes a record a crashed attempt left open."""
        ref = ObjectRef.of(sync)
        sequence = last_sequence + 1
        while True:
            record_at = record_ref(ref.namespace, ref.name, sequence)
            body = {
                "apiVersion": API_VERSION,
                "kind": SYNC_RECORD.kind,
                "metadata": {
                    "name": record_at.name,
                    "namespace": ref.namespace,
                    "labels": {SYNC_NAME_LABEL: sync_name_label(ref.name)},
                },
                "spec": {"sync": ref.name, "sequence": sequence, "result": IN_PROGRESS, "attempts": 1, **fields},
            }
            try:
                await self.api.create(body)
                return OpenRecord(record_at, sequence)
            except ApiError as error:
                if not error.conflict:
                    raise
            await self.close_if_open(record_at)
            sequence += 1

    async def reopen(self, record_at: ObjectRef) -> OpenRecord | None:
        """Marks an existing record InProgress again for one more attempt; None when it is gone."""
        existing = await self.api.get(record_at)
        if existing is None:
            return None
        spec = existing.get("spec") or {}
        attempts = int(spec.get("attempts") or 1) + 1
        await self.api.merge_patch(record_at, {"spec": {"result": IN_PROGRESS, "attempts": attempts}})
        return OpenRecord(record_at, int(spec.get("sequence") or 0))

    async def close_if_open(self, ref: ObjectRef, detail: str = "the controller stopped during this attempt") -> None:
        existing = await self.api.get(ref)
        if existing is not None and (existing.get("spec") or {}).get("result") == IN_PROGRESS:
            await self.api.merge_patch(ref, {"spec": {"result": INTERRUPTED, "detail": detail}})

    async def close(self, record: OpenRecord, fields: Mapping[str, Any]) -> None:
        await self.api.merge_patch(record.ref, {"spec": dict(fields)})

    async def repeat(self, record_at: ObjectRef, fields: Mapping[str, Any]) -> bool:
        """Counts one more attempt on an existing record; False when the record is gone."""
        existing = await self.api.get(record_at)
        if existing is None:
            return False
        attempts = int((existing.get("spec") or {}).get("attempts") or 1) + 1
        await self.api.merge_patch(record_at, {"spec": {**fields, "attempts": attempts}})
        return True

    async def list(self, namespace: str, sync_name: str | None = None) -> list[KubeObject]:
        """Records oldest first, of one Sync or (sync_name None) of every Sync in `namespace` ('' = all)."""
        resource = await self.api.discovery.resolve(API_VERSION, SYNC_RECORD.kind)
        if resource is None:
            return []
        selector = f"{SYNC_NAME_LABEL}={sync_name_label(sync_name)}" if sync_name else None
        listing = await self.api.list(resource, namespace=namespace or None, label_selector=selector)
        items = [item for item in listing.items if not sync_name or item["spec"].get("sync") == sync_name]
        return sorted(
            items, key=lambda item: (item["metadata"]["namespace"], item["spec"]["sync"], int(item["spec"]["sequence"]))
        )

    async def trim(self, namespace: str, sync_name: str, newest: int) -> None:
        """Deletes records older than the retention limit."""
        oldest_kept = newest - self.retention
        if oldest_kept <= 0:
            return
        stale = record_ref(namespace, sync_name, oldest_kept)
        await self.api.delete(stale)
