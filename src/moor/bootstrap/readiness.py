"""Waiting until every Sync of the cluster is Ready, telling each change of state as it happens."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from moor.cluster.api import KubeApi
from moor.resources import API_VERSION
from moor.resources.kinds import SYNC

_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class SyncState:
    """A Sync as a person reads it: ready or not, why, and at which revision."""

    namespace: str
    name: str
    ready: bool
    reason: str
    message: str
    revision: str

    @classmethod
    def of(cls, sync: Mapping[str, Any]) -> SyncState:
        metadata = sync.get("metadata") or {}
        status = sync.get("status") or {}
        ready: Mapping[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        current = status.get("observedGeneration") == metadata.get("generation")
        return cls(
            namespace=str(metadata.get("namespace") or ""),
            name=str(metadata.get("name") or ""),
            ready=current and ready.get("status") == "True",
            reason=str(ready.get("reason") or ("Pending" if not ready else "")),
            message=str(ready.get("message") or "not reconciled yet"),
            revision=str(status.get("lastAppliedRevision") or ""),
        )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


async def sync_states(api: KubeApi) -> list[SyncState]:
    """Every Sync of the cluster, sorted by namespace and name."""
    resource = await api.discovery.resolve(API_VERSION, SYNC.kind)
    if resource is None:
        return []
    listing = await api.list(resource)
    return sorted((SyncState.of(item) for item in listing.items), key=lambda state: state.key)


async def wait_for_syncs(
    api: KubeApi, *, expected: str, timeout: float, on_change: Callable[[SyncState], None]
) -> list[SyncState]:
    """Polls until `expected` (`namespace/name`) and every other Sync are Ready, or `timeout` seconds
    pass; calls `on_change` for each state seen for the first time. Returns the last states seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: dict[str, tuple[bool, str, str]] = {}
    while True:
        states = await sync_states(api)
        for state in states:
            summary = (state.ready, state.reason, state.revision)
            if seen.get(state.key) != summary:
                seen[state.key] = summary
                on_change(state)
        if any(state.key == expected for state in states) and all(state.ready for state in states):
            return states
        if loop.time() >= deadline:
            return states
        await asyncio.sleep(_POLL_SECONDS)
