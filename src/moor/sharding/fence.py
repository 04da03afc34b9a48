"""Fenced writes: a member writes only while its own Lease is valid and it still owns what it reconciles.

`FencedApi` is the KubeApi a sharded controller reconciles with: before every write (apply, patch,
update, create, delete; dry runs are not writes) it asks `Fence.check`, which refuses with `Fenced`
when this member's Lease was not renewed within its duration minus the safety margin (by this process's
monotonic clock), or when the object being reconciled (`reconciling`) is no longer in this member's
shard. Every write of a pass is checked, not only the first, so a pass that loses its object midway
stops at its next write. What it cannot stop is a write already sent when the process was paused:
the API server may still carry it out after the Lease expired (docs/scale-out.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Protocol

from moor.cluster.api import KubeApi
from moor.cluster.client import Impersonation, KubeClient
from moor.cluster.discovery import Discovery
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef

_reconciling: ContextVar[KubeObject | None] = ContextVar("reconciling", default=None)


class Fenced(MoorError):
    """A write refused: this member's Lease lapsed, or the object moved to another member."""


class Ownership(Protocol):
    def own_lease_valid(self) -> bool: ...


class Owns(Protocol):
    def owns(self, obj: KubeObject) -> bool: ...


@contextlib.contextmanager
def reconciling(obj: KubeObject) -> Iterator[None]:
    """Within this block (and the tasks it starts), writes are fenced on `obj` staying in this member's shard."""
    token = _reconciling.set(obj)
    try:
        yield
    finally:
        _reconciling.reset(token)


class Fence:
    def __init__(self, membership: Ownership, shard: Owns) -> None:
        self.membership = membership
        self.shard = shard

    def check(self) -> None:
        """Raises Fenced unless this member may write now."""
        if not self.membership.own_lease_valid():
            raise Fenced("this member's Lease is not valid (not renewed in time): it writes nothing")
        obj = _reconciling.get()
        if obj is not None and not self.shard.owns(obj):
            metadata = obj.get("metadata") or {}
            raise Fenced(
                f"{obj.get('kind')} {metadata.get('namespace', '')}/{metadata.get('name')} moved to another member"
            )


class FencedApi(KubeApi):
    """A KubeApi whose every write passes the fence first."""

    def __init__(self, client: KubeClient, fence: Fence, discovery: Discovery | None = None) -> None:
        super().__init__(client, discovery)
        self.fence = fence

    def as_user(self, impersonation: Impersonation | None) -> KubeApi:
        if impersonation is None:
            return self
        return FencedApi(self.client.impersonating(impersonation), self.fence, self.discovery)

    async def apply(
        self, obj: KubeObject, *, dry_run: bool = False, force: bool = False, metadata_only: bool = False
    ) -> KubeObject:
        if not dry_run:
            self.fence.check()
        return await super().apply(obj, dry_run=dry_run, force=force, metadata_only=metadata_only)

    async def merge_patch(self, ref: ObjectRef, patch: Mapping[str, Any], *, subresource: str = "") -> KubeObject:
        self.fence.check()
        return await super().merge_patch(ref, patch, subresource=subresource)

    async def replace_status(self, obj: KubeObject) -> KubeObject:
        self.fence.check()
        return await super().replace_status(obj)

    async def update(self, obj: KubeObject) -> KubeObject:
        self.fence.check()
        return await super().update(obj)

    async def create(self, obj: KubeObject) -> KubeObject:
        self.fence.check()
        return await super().create(obj)

    async def delete(self, ref: ObjectRef, *, propagation: str = "Background", dry_run: bool = False) -> bool:
        if not dry_run:
            self.fence.check()
        return await super().delete(ref, propagation=propagation, dry_run=dry_run)
