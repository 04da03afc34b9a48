"""The apply engine against the real API server, through the fault proxy: objects the server refuses are
reported one by one and nothing is written; a failure of the cluster itself fails the whole set, and once
`apply_set` or `delete_all` has raised, no request of it is still running."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from moor import binaries
from moor.cluster.api import KubeApi
from moor.cluster.apply import Applier, ChangeSetRejected
from moor.cluster.client import ApiError, ApiUnreachable, KubeClient
from moor.cluster.config import load_kubeconfig
from moor.objects import ObjectRef
from moor.retry import RetryPolicy
from tests.support.cluster_fixtures import Kubectl
from tests.support.fault_proxy import FaultProxy

NAMESPACE = "applier"
COUNT = 40


@pytest.fixture
async def api(fault_proxy: FaultProxy) -> AsyncIterator[KubeApi]:
    """A KubeApi through the proxy that tries each request once, so that each injected fault surfaces."""
    kubectl = Kubectl(binaries.locate("kubectl"), fault_proxy.cluster.kubeconfig)
    if kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0:
        kubectl("create", "namespace", NAMESPACE)
    kubectl("delete", "configmaps", "--all", "-n", NAMESPACE)
    async with KubeClient(load_kubeconfig(fault_proxy.kubeconfig), retry=RetryPolicy(attempts=1)) as client:
        api = KubeApi(client)
        await api.discovery.refresh()
        yield api


def config_maps(count: int = COUNT) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"item-{i:04d}", "namespace": NAMESPACE, "labels": {"moor.dev/sync": "applier"}},
            "data": {"index": str(i)},
        }
        for i in range(count)
    ]


def live_names(fault_proxy: FaultProxy) -> set[str]:
    kubectl = Kubectl(binaries.locate("kubectl"), fault_proxy.cluster.kubeconfig)
    listing = json.loads(kubectl("get", "configmaps", "-n", NAMESPACE, "-l", "moor.dev/sync", "-o", "json").stdout)
    return {item["metadata"]["name"] for item in listing["items"]}


async def requests_stop_growing(api: KubeApi) -> tuple[int, int]:
    """The number of requests sent right away and one second later (equal: nothing kept running)."""
    before = sum(api.client.requests.values())
    await asyncio.sleep(1.5)
    return before, sum(api.client.requests.values())


async def test_objects_the_server_refuses_are_each_named_and_nothing_is_written(
    api: KubeApi, fault_proxy: FaultProxy
) -> None:
    objects = config_maps(10)
    objects[3]["data"] = {"bad key!": "x"}  # refused by validation
    objects[7]["metadata"]["labels"] = {"moor.dev/sync": "-not a label-"}
    with pytest.raises(ChangeSetRejected) as rejected:
        await Applier(api, concurrency=4).apply_set(objects)
    assert {rejection.ref.name for rejection in rejected.value.rejections} == {"item-0003", "item-0007"}
    assert live_names(fault_proxy) == set()


async def test_a_lost_connection_fails_the_set_and_cancels_the_other_requests(
    api: KubeApi, fault_proxy: FaultProxy
) -> None:
    # Each request takes a while, and the one for item-0000 loses its connection: the other 39 must not
    # go on being sent once the set has failed.
    fault_proxy.stall(rf"/namespaces/{NAMESPACE}/configmaps/", seconds=0.3, method="PATCH")
    fault_proxy.reset(rf"/namespaces/{NAMESPACE}/configmaps/item-0000$", method="PATCH")
    applier = Applier(api, concurrency=4)
    with pytest.raises(ApiUnreachable):
        await applier.apply_set(config_maps())
    before, after = await requests_stop_growing(api)
    assert after == before, f"{after - before} requests were sent after apply_set raised"
    assert before < 2 * COUNT  # it stopped early, well before every dry run and write
    assert live_names(fault_proxy) == set()  # it failed during the dry runs: nothing written
    assert not [task for task in asyncio.all_tasks() if task is not asyncio.current_task() and not task.done()]


async def test_an_unavailable_api_server_fails_the_set_instead_of_rejecting_one_object(
    api: KubeApi, fault_proxy: FaultProxy
) -> None:
    # A 503 is the server's trouble, not the object's: reporting it as a rejection would make a
    # Sync roll back a good revision.
    fault_proxy.respond(503, rf"/namespaces/{NAMESPACE}/configmaps/item-0002$", method="PATCH")
    with pytest.raises(ApiError) as failed:
        await Applier(api, concurrency=4).apply_set(config_maps(10))
    assert not isinstance(failed.value, ChangeSetRejected)
    assert failed.value.status == 503


async def test_a_lost_connection_while_pruning_fails_the_prune_and_leaves_nothing_running(
    api: KubeApi, fault_proxy: FaultProxy
) -> None:
    applier = Applier(api, concurrency=2)
    outcome = await applier.apply_set(config_maps(20))
    refs = [*outcome.created]
    assert len(refs) == 20
    fault_proxy.stall(rf"/namespaces/{NAMESPACE}/configmaps/", seconds=0.3, method="DELETE")
    fault_proxy.reset(rf"/namespaces/{NAMESPACE}/configmaps/item-0001$", method="DELETE")
    with pytest.raises(ApiUnreachable):
        await Applier(api, concurrency=2).delete_all(sorted(refs, key=ObjectRef.sort_key), outcome)
    before, after = await requests_stop_growing(api)
    assert after == before, f"{after - before} requests were sent after delete_all raised"
    assert len(live_names(fault_proxy)) > 10  # the rest was not deleted behind its back
