"""The last healthy rendered state of a Sync, kept in a Secret beside it, so a rollback needs neither
Git nor a warm cache after a restart (a force-push may even have removed the commit from Git).

A Secret, not a ConfigMap, because the state may hold Secrets from Git. The objects are stored as
gzip-compressed JSON; a state too big for one Secret is not kept, and rollback renders the healthy
commit from Git instead.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from moor.cluster.api import KubeApi
from moor.cluster.client import ApiError
from moor.names import fit_name
from moor.objects import KubeObject, ObjectRef

log = logging.getLogger(__name__)

MAX_BYTES = 900 * 1024
"""A Secret holds at most 1 MiB; leave room for its metadata."""
STATE_KEY = "state.json.gz"
REVISION_ANNOTATION = "moor.dev/revision"
SNAPSHOT_SUFFIX = ".moor-healthy-state"


@dataclass(frozen=True)
class Snapshot:
    revision: str
    objects: list[KubeObject]


def snapshot_ref(sync: KubeObject) -> ObjectRef:
    """The Secret `<sync>.moor-healthy-state` beside the Sync (the name shortened with a hash when too long)."""
    ref = ObjectRef.of(sync)
    return ObjectRef("", "v1", "Secret", ref.namespace, fit_name(ref.name, SNAPSHOT_SUFFIX))


class SnapshotStore:
    def __init__(self, api: KubeApi) -> None:
        self.api = api

    async def save(self, sync: KubeObject, revision: str, objects: Sequence[KubeObject]) -> bool:
        """Keeps `objects` as the Sync's healthy state at `revision`; False when it is too big to keep."""
        packed = await asyncio.to_thread(_pack, list(objects))
        if len(packed) > MAX_BYTES:
            log.warning("%s: the healthy state (%d bytes packed) is too big to keep", ObjectRef.of(sync), len(packed))
            return False
        ref = snapshot_ref(sync)
        metadata = sync["metadata"]
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "moor.dev/healthy-state",
            "metadata": {
                "name": ref.name,
                "namespace": ref.namespace,
                "annotations": {REVISION_ANNOTATION: revision},
                "ownerReferences": [
                    {
                        "apiVersion": sync["apiVersion"],
                        "kind": sync["kind"],
                        "name": metadata["name"],
                        "uid": metadata["uid"],
                    }
                ],
            },
            "data": {STATE_KEY: base64.b64encode(packed).decode()},
        }
        await self.api.apply(secret, force=True, metadata_only=True)
        return True

    async def load(self, sync: KubeObject, revision: str) -> Snapshot | None:
        """The kept state if it is the one of `revision`."""
        try:
            secret = await self.api.get(snapshot_ref(sync))
        except ApiError:
            return None
        if secret is None:
            return None
        annotations = secret["metadata"].get("annotations") or {}
        if annotations.get(REVISION_ANNOTATION) != revision:
            return None
        packed = base64.b64decode((secret.get("data") or {}).get(STATE_KEY, ""))
        return Snapshot(revision, await asyncio.to_thread(_unpack, packed))


def _pack(objects: list[KubeObject]) -> bytes:
    return gzip.compress(json.dumps(objects, separators=(",", ":")).encode(), compresslevel=6)


def _unpack(packed: bytes) -> list[KubeObject]:
    objects: list[KubeObject] = json.loads(gzip.decompress(packed))
    return objects
