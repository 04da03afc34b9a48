"""Informers against a real API server behind a fault proxy: every failure is noticed, reported, and healed.

Each test builds a LiveCache (or a single KindInformer) on the proxy's kubeconfig and makes changes with
kubectl on the real cluster, around the proxy, so they happen whatever the proxy does to Moor.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import pytest

from moor import binaries
from moor.cluster.api import KubeApi
from moor.cluster.cache import InformerNotSynced, KindInformer, LiveCache, LiveChange
from moor.cluster.client import KubeClient
from moor.cluster.config import load_kubeconfig
from moor.cluster.discovery import ResourceType
from moor.devcluster import ClusterInfo
from moor.objects import SYNC_LABEL, ObjectRef
from tests.support.cluster_fixtures import Kubectl, namespace_name
from tests.support.fault_proxy import FaultProxy

CONFIG_MAPS_LIST = r"^/api/v1/configmaps$"
"""The path of every list and watch of a cluster-wide ConfigMap informer."""


@pytest.fixture(scope="module")
def kubectl_private(private_cluster: ClusterInfo) -> Kubectl:
    """kubectl on the private cluster itself, around the proxy."""
    return Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)


@pytest.fixture
def space(request: pytest.FixtureRequest, kubectl_private: Kubectl) -> Iterator[str]:
    """A namespace of the test's own in the private cluster."""
    name = namespace_name(request.node.name)
    kubectl_private("create", "namespace", name)
    yield name
    kubectl_private("delete", "namespace", name, "--wait=false", check=False)


@asynccontextmanager
async def api_through(proxy: FaultProxy) -> AsyncIterator[tuple[KubeApi, ResourceType]]:
    async with KubeClient(load_kubeconfig(proxy.kubeconfig)) as client:
        api = KubeApi(client)
        config_maps = await api.discovery.resolve("v1", "ConfigMap")
        assert config_maps is not None
        yield api, config_maps


async def eventually(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within}s: {what}"
        await asyncio.sleep(0.05)


def labelled_config_map(kubectl: Kubectl, namespace: str, name: str, value: str = "1") -> ObjectRef:
    kubectl("create", "configmap", name, "-n", namespace, f"--from-literal=a={value}")
    kubectl("label", "configmap", name, "-n", namespace, f"{SYNC_LABEL}=test.informers")
    return ObjectRef("", "v1", "ConfigMap", namespace, name)


def patch_data(kubectl: Kubectl, namespace: str, name: str, value: str) -> None:
    kubectl("patch", "configmap", name, "-n", namespace, "--type=merge", "-p", json.dumps({"data": {"a": value}}))


def data_of(cache: LiveCache, ref: ObjectRef) -> str | None:
    return ((cache.get(ref) or {}).get("data") or {}).get("a")


def phase_of_config_maps(cache: LiveCache) -> str:
    state = cache.state("", "ConfigMap")
    assert state is not None, "ConfigMaps are watched"
    return state.phase


async def test_a_dropped_watch_is_resumed_and_a_change_made_meanwhile_arrives(
    fault_proxy: FaultProxy, kubectl_private: Kubectl, space: str
) -> None:
    seen = labelled_config_map(kubectl_private, space, "seen")
    async with api_through(fault_proxy) as (api, config_maps):
        cache = LiveCache(api)
        try:
            await cache.watch_kinds([config_maps])
            assert data_of(cache, seen) == "1"
            await eventually(lambda: bool(fault_proxy.requests_to(r"watch=true")), 30, "the watch opened")

            fault_proxy.reset(CONFIG_MAPS_LIST)  # the watch may not come back yet, nor the list after it
            assert fault_proxy.drop_watches() >= 1
            await eventually(lambda: phase_of_config_maps(cache) == "failing", 30, "the informer noticed")
            assert "configmaps: cannot" in cache.failing()[0]
            await asyncio.to_thread(patch_data, kubectl_private, space, "seen", "2")

            fault_proxy.clear()
            await eventually(lambda: data_of(cache, seen) == "2", 30, "the change made during the outage arrived")
            assert phase_of_config_maps(cache) == "watching"
            assert cache.failing() == []
            await cache.wait_synced("", "ConfigMap", within=5)
        finally:
            await cache.stop()


async def test_a_kind_that_may_not_be_listed_is_reported_at_once_and_heals_when_allowed(
    fault_proxy: FaultProxy, kubectl_private: Kubectl, space: str
) -> None:
    seen = labelled_config_map(kubectl_private, space, "seen")
    fault_proxy.respond(403, CONFIG_MAPS_LIST, method="GET", message='configmaps is forbidden: User "moor" cannot list')
    async with api_through(fault_proxy) as (api, config_maps):
        cache = LiveCache(api)
        try:
            started = time.monotonic()
            with pytest.raises(InformerNotSynced) as refused:
                await cache.watch_kinds([config_maps], within=60)
            assert time.monotonic() - started < 30, "a forbidden kind is reported, not waited on until the deadline"
            assert str(refused.value).startswith("cannot list configmaps: forbidden: configmaps is forbidden")
            assert (refused.value.reason, refused.value.resource) == ("forbidden", config_maps)
            state = cache.state("", "ConfigMap")
            assert state is not None and state.phase == "failing" and "forbidden" in state.error
            [line] = cache.failing()
            assert line.startswith("configmaps: cannot list: forbidden: ") and "(failing for " in line
            assert cache.phase_counts() == {"listing": 0, "watching": 0, "failing": 1}
            with pytest.raises(InformerNotSynced):
                await cache.wait_synced("", "ConfigMap", within=60)  # asked again: told again, at once

            fault_proxy.clear()  # the RBAC grant: the informer, still trying at a slow pace, heals by itself
            await eventually(lambda: phase_of_config_maps(cache) == "watching", 90, "healed after the grant")
            await cache.wait_synced("", "ConfigMap", within=5)
            assert data_of(cache, seen) == "1"
            assert cache.failing() == []
            assert cache.phase_counts()["watching"] == 1
        finally:
            await cache.stop()


async def test_a_first_list_that_stalls_past_the_deadline_is_reported_and_arrives_later(
    fault_proxy: FaultProxy, kubectl_private: Kubectl, space: str
) -> None:
    seen = labelled_config_map(kubectl_private, space, "seen")
    fault_proxy.stall(CONFIG_MAPS_LIST, seconds=8, method="GET", watch=False, times=1)
    async with api_through(fault_proxy) as (api, config_maps):
        cache = LiveCache(api)
        try:
            with pytest.raises(InformerNotSynced) as late:
                await cache.watch_kinds([config_maps], within=2)
            assert str(late.value) == "cannot list configmaps: the API server did not answer within 2s"
            assert late.value.reason == "timeout"
            assert phase_of_config_maps(cache) == "listing"

            await cache.wait_synced("", "ConfigMap", within=60)
            assert data_of(cache, seen) == "1"
        finally:
            await cache.stop()


async def test_a_listener_that_raises_does_not_stop_later_events(
    fault_proxy: FaultProxy, kubectl_private: Kubectl, space: str
) -> None:
    seen = labelled_config_map(kubectl_private, space, "seen")
    heard: list[LiveChange] = []

    def broken(change: LiveChange) -> None:
        raise RuntimeError("a bug in a subscriber")

    async with api_through(fault_proxy) as (api, config_maps):
        cache = LiveCache(api)
        cache.subscribe(broken)
        cache.subscribe(heard.append)
        direct: list[LiveChange] = []

        def broken_then_recording(change: LiveChange) -> None:
            direct.append(change)
            raise ValueError("a bug in the informer's own listener")

        informer = KindInformer(api, config_maps, broken_then_recording)
        informer.start()
        try:
            await cache.watch_kinds([config_maps])
            await informer.wait_synced()
            await asyncio.to_thread(patch_data, kubectl_private, space, "seen", "2")
            await eventually(lambda: data_of(cache, seen) == "2", 30, "the cache follows the first change")
            await asyncio.to_thread(patch_data, kubectl_private, space, "seen", "3")
            await eventually(lambda: data_of(cache, seen) == "3", 30, "the cache follows the second change")
            await eventually(lambda: len(direct) >= 3, 30, "the informer's own listener hears every change")
            values = [change.object["data"]["a"] for change in heard if change.object["metadata"]["name"] == "seen"]
            assert values[-2:] == ["2", "3"], "the other subscriber heard every change after the broken one raised"
            assert phase_of_config_maps(cache) == "watching"
            assert informer.state.phase == "watching"
        finally:
            await informer.stop()
            await cache.stop()


async def test_large_kinds_are_listed_a_page_at_a_time(
    fault_proxy: FaultProxy, private_cluster: ClusterInfo, space: str
) -> None:
    count = 1_200
    async with KubeClient(load_kubeconfig(private_cluster.kubeconfig)) as direct:  # around the proxy
        api = KubeApi(direct)
        slots = asyncio.Semaphore(16)

        async def create(index: int) -> None:
            metadata = {"name": f"page-{index:04d}", "namespace": space, "labels": {SYNC_LABEL: "test.pages"}}
            async with slots:
                await api.create(
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"index": str(index)}}
                )

        await asyncio.gather(*(create(index) for index in range(count)))
    async with api_through(fault_proxy) as (api, config_maps):
        # Pages of 100 rather than the default 500: the server gzips answers over 128 KiB, which the proxy
        # does not pass on as it should; the size of a page does not change what is tested.
        informer = KindInformer(api, config_maps, lambda change: None, page_size=100)
        informer.start()
        try:
            await informer.wait_synced(within=120)
            held = [obj for obj in informer.objects.values() if obj["metadata"]["namespace"] == space]
            assert len(held) == count
            assert {obj["data"]["index"] for obj in held} == {str(index) for index in range(count)}
            lists = [path for method, path, _ in fault_proxy.requests_to(r"^/api/v1/configmaps\?") if method == "GET"]
            lists = [path for path in lists if "watch=true" not in path]
            assert lists and all("limit=100" in path for path in lists)
            assert sum("continue=" in path for path in lists) >= 11, "1,200 objects (and more) are 12 pages or more"
        finally:
            await informer.stop()
            async with KubeClient(load_kubeconfig(private_cluster.kubeconfig)) as direct:  # the other tests list less
                await direct.request("deletecollection", "DELETE", f"/api/v1/namespaces/{space}/configmaps")


async def test_after_an_outage_the_watch_resumes_within_seconds_and_says_so(
    fault_proxy: FaultProxy, kubectl_private: Kubectl, space: str
) -> None:
    seen = labelled_config_map(kubectl_private, space, "seen")
    recovered = asyncio.Event()
    async with api_through(fault_proxy) as (api, config_maps):
        informer = KindInformer(api, config_maps, lambda change: None, on_recovered=recovered.set)
        informer.start()
        try:
            await informer.wait_synced()
            recovered.clear()
            await eventually(lambda: bool(fault_proxy.requests_to(r"watch=true")), 30, "the watch opened")
            await asyncio.sleep(0.5)
            fault_proxy.refuse()
            await eventually(lambda: informer.state.phase == "failing", 30, "the informer noticed the outage")
            assert "unreachable" in informer.state.error or "timeout" in informer.state.error
            await asyncio.sleep(15)  # long enough for a doubling backoff to have grown past a few seconds
            assert informer.state.phase == "failing"
            assert not recovered.is_set()
            await asyncio.to_thread(patch_data, kubectl_private, space, "seen", "2")

            fault_proxy.accept()
            back = time.monotonic()
            await eventually(lambda: informer.state.phase == "watching", 10, "watching again within seconds")
            assert recovered.is_set(), "on_recovered was called on the way back"
            assert time.monotonic() - back < 10
            assert informer.objects[seen.identity]["data"] == {"a": "2"}
        finally:
            await informer.stop()


async def test_a_list_whose_continue_token_expired_starts_again_in_one_answer(
    fault_proxy: FaultProxy, kubectl_private: Kubectl, space: str
) -> None:
    names = [f"item-{index}" for index in range(5)]
    for name in names:
        labelled_config_map(kubectl_private, space, name)
    path = rf"^/api/v1/namespaces/{space}/configmaps$"
    held = fault_proxy.stall(path, seconds=2, method="GET", times=1)  # the first page is held...
    async with api_through(fault_proxy) as (api, config_maps):
        listing = asyncio.create_task(api.list(config_maps, namespace=space, label_selector=SYNC_LABEL, limit=2))
        await eventually(lambda: held.hits == 1, 30, "the first page was asked for")
        expired = fault_proxy.respond(410, path, method="GET", times=1)  # ...so that the second one expires
        result = await listing
    assert sorted(item["metadata"]["name"] for item in result.items) == names
    assert expired.hits == 1
    asked = [
        query for method, query, _ in fault_proxy.requests_to(rf"/namespaces/{space}/configmaps\?") if method == "GET"
    ]
    assert "limit=2" in asked[0] and "continue=" not in asked[0]
    assert "continue=" in asked[1], "the expired request was the second page's"
    assert "limit=" not in asked[2] and "continue=" not in asked[2], "then the whole list, in one answer"
