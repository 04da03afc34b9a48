"""Per object, how the cluster differs from Git: the comparison `moor diff` makes, by the controller's planner.

The Sync's source revision is rendered as the controller renders it and compared with the live
objects by `moor.plan.plan_changes` (under the API's schemas). Only the planner's `FieldDifference`s
leave this module, as text: a Secret's difference names its key and says it changed, never a value.

A render costs a fetch (once per commit: the artifact cache keeps it) and a renderer run, so a Sync's
plan is kept until its source revision or one of its live objects changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from moor.cluster.api import KubeApi
from moor.controller.rendering import decryption_keys, desired_objects, helm_values_from, sync_key
from moor.controller.source_store import SourceStore
from moor.objects import Identity, KubeObject, ObjectRef
from moor.plan import DesiredSet, plan_changes
from moor.resources import SyncSpec
from moor.source import ArtifactCache

RENDER_SECONDS = 60.0


@dataclass(frozen=True)
class ObjectDiff:
    revision: str
    action: str
    """create, update, none, prune, keep... as the planner decided; '' when Git does not declare it."""
    differences: tuple[str, ...]
    paths: tuple[str, ...]
    """The paths of the fields that differ (a Secret's say which keys changed)."""


class GitDiffs:
    def __init__(self, api: KubeApi, artifact_dir: Path, changes_of: Callable[[str], int]) -> None:
        self.api = api
        self.sources = SourceStore(api, ArtifactCache(artifact_dir, max_entries=8))
        self._changes_of = changes_of
        self._plans: dict[Identity, tuple[tuple[object, ...], dict[Identity, ObjectDiff]]] = {}
        self._locks: dict[Identity, asyncio.Lock] = {}

    async def of(
        self, sync: KubeObject, repository: KubeObject, live: Callable[[ObjectRef], KubeObject | None]
    ) -> dict[Identity, ObjectDiff]:
        """Every object's difference from the newest revision of the Sync's source; MoorError when the source
        cannot be fetched or rendered, TimeoutError after RENDER_SECONDS."""
        identity = ObjectRef.of(sync).identity
        key = (
            (sync.get("metadata") or {}).get("generation"),
            ((repository.get("status") or {}).get("artifact") or {}).get("revision"),
            self._changes_of(sync_key(sync)),
        )
        async with self._locks.setdefault(identity, asyncio.Lock()):
            cached = self._plans.get(identity)
            if cached is not None and cached[0] == key:
                return cached[1]
            async with asyncio.timeout(RENDER_SECONDS):
                found = await self._plan(sync, repository, live)
            self._plans[identity] = (key, found)
            return found

    async def _plan(
        self, sync: KubeObject, repository: KubeObject, live: Callable[[ObjectRef], KubeObject | None]
    ) -> dict[Identity, ObjectDiff]:
        spec = SyncSpec.from_object(sync)
        artifact = await self.sources.newest(repository, spec)
        keys = await decryption_keys(sync, spec, self.sources)
        values = await helm_values_from(sync, spec, self.api)
        desired = DesiredSet.of(
            await desired_objects(sync, spec, artifact.path, self.api.discovery, keys, values_from=values)
        )
        inventory = tuple(ObjectRef.from_dict(entry) for entry in (sync.get("status") or {}).get("inventory") or [])
        found = {ref.identity: obj for ref in (*desired.refs, *inventory) if (obj := live(ref)) is not None}
        plan = plan_changes(
            desired,
            found,
            inventory if spec.prune else (),
            sync_key=sync_key(sync),
            schemas=await self.api.schemas.for_api_versions({ref.api_version for ref in desired.refs}),
        )
        return {
            change.ref.identity: ObjectDiff(
                artifact.revision,
                change.action.value,
                tuple(str(difference) for difference in change.differences),
                tuple(str(difference.path) for difference in change.differences),
            )
            for change in plan.changes
        }
