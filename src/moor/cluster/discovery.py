"""Which resources the API server serves: kind to REST path and scope, from aggregated discovery.

Two requests (`/api` and `/apis`) describe every group; a kind not found triggers one refresh (a CRD
may just have been created), never more than once per `min_refresh_interval`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from moor.cluster.client import KubeClient
from moor.objects import ObjectRef, split_api_version

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str | None = None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{prefix}/{self.plural}"

    def object_path(self, namespace: str, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


class Discovery:
    def __init__(self, client: KubeClient, min_refresh_interval: float = 2.0) -> None:
        self._client = client
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._preferred: dict[tuple[str, str], str] = {}
        self._loaded_at = 0.0
        self._min_refresh_interval = min_refresh_interval
        self._lock = asyncio.Lock()
        self.server_version = ""

    async def resolve(self, api_version: str, kind: str) -> ResourceType | None:
        """The resource serving `kind` at `api_version`, or None when the server doesn't know it."""
        group, version = split_api_version(api_version)
        key = (group, version, kind)
        if key not in self._types:
            await self.refresh(force=False)
        return self._types.get(key)

    async def resolve_ref(self, ref: ObjectRef) -> ResourceType | None:
        return await self.resolve(ref.api_version, ref.kind)

    async def is_namespaced(self, api_version: str, kind: str) -> bool | None:
        resource = await self.resolve(api_version, kind)
        return None if resource is None else resource.namespaced

    def known_namespaced(self, api_version: str, kind: str) -> bool | None:
        """Scope from what was already discovered, without any request."""
        resource = self._types.get((*split_api_version(api_version), kind))
        return None if resource is None else resource.namespaced

    def served(self) -> tuple[ResourceType, ...]:
        """Every resource type the cluster served when discovery last loaded, without any request."""
        return tuple(self._types.values())

    def preferred_version(self, group: str, kind: str) -> str | None:
        return self._preferred.get((group, kind))

    async def ensure_loaded(self) -> None:
        if not self._loaded_at:
            await self.refresh(force=False)

    async def refresh(self, *, force: bool = True) -> None:
        async with self._lock:
            if not force and time.monotonic() - self._loaded_at < self._min_refresh_interval:
                return
            types: dict[tuple[str, str, str], ResourceType] = {}
            preferred: dict[tuple[str, str], str] = {}
            for path in ("/api", "/apis"):
                document = await self._client.request("discovery", "GET", path, accept=AGGREGATED)
                _read_groups(document, types, preferred)
            if not self.server_version:
                version = await self._client.request("discovery", "GET", "/version")
                self.server_version = str(version.get("gitVersion", ""))
            self._types, self._preferred = types, preferred
            self._loaded_at = time.monotonic()


def _read_groups(
    document: dict[str, Any],
    types: dict[tuple[str, str, str], ResourceType],
    preferred: dict[tuple[str, str], str],
) -> None:
    for group_entry in document.get("items") or []:
        group = (group_entry.get("metadata") or {}).get("name", "")
        for index, version_entry in enumerate(group_entry.get("versions") or []):
            version = version_entry["version"]
            for resource in version_entry.get("resources") or []:
                kind = (resource.get("responseKind") or {}).get("kind")
                if not kind:
                    continue
                resource_type = ResourceType(
                    group=group,
                    version=version,
                    kind=kind,
                    plural=resource["resource"],
                    namespaced=resource.get("scope") == "Namespaced",
                )
                types[(group, version, kind)] = resource_type
                if index == 0:
                    preferred.setdefault((group, kind), version)
