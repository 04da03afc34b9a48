"""The shared live cache against the real API server: lists, follows changes, lets unused kinds go."""

from __future__ import annotations

import asyncio
from pathlib import Path

from moor.cluster.api import KubeApi
from moor.cluster.cache import LiveCache, LiveChange
from moor.cluster.client import KubeClient
from moor.cluster.config import load_kubeconfig
from moor.objects import SYNC_LABEL, ObjectRef
from tests.support.cluster_fixtures import Kubectl


async def test_the_cache_follows_labelled_objects_and_releases_unused_kinds(
    kubeconfig: Path, kubectl: Kubectl, namespace: str
) -> None:
    kubectl("create", "configmap", "seen", "-n", namespace, "--from-literal=a=1")
    kubectl("label", "configmap", "seen", "-n", namespace, f"{SYNC_LABEL}=test.app")
    kubectl("create", "configmap", "unlabelled", "-n", namespace, "--from-literal=a=1")
    async with KubeClient(load_kubeconfig(kubeconfig)) as client:
        api = KubeApi(client)
        cache = LiveCache(api)
        changes: list[LiveChange] = []
        cache.subscribe(changes.append)
        config_maps = await api.discovery.resolve("v1", "ConfigMap")
        assert config_maps is not None
        await cache.watch_kinds([config_maps])
        seen = ObjectRef("", "v1", "ConfigMap", namespace, "seen")
        assert cache.get(seen) is not None
        assert cache.get(ObjectRef("", "v1", "ConfigMap", namespace, "unlabelled")) is None, "only labelled objects"

        requests_before = sum(client.requests.values())
        await asyncio.to_thread(
            kubectl, "patch", "configmap", "seen", "-n", namespace, "--type=merge", "-p", '{"data":{"a":"2"}}'
        )
        for _ in range(50):
            if (cache.get(seen) or {}).get("data") == {"a": "2"}:
                break
            await cache.wait_for_change(0.1)
        assert cache.get(seen)["data"] == {"a": "2"}
        assert sum(client.requests.values()) == requests_before, "changes arrive on the open watch"
        assert any(c.type == "MODIFIED" and c.previous and c.previous["data"] == {"a": "1"} for c in changes)

        assert await cache.retain_kinds({("", "ConfigMap")}, younger_than=0) == []
        assert await cache.retain_kinds(set(), younger_than=0) == [("", "ConfigMap")]
        assert not cache.is_watching("", "ConfigMap")
        await cache.stop()
