"""A dashboard served from the controller reads the controller's informers of Moor's kinds, keeping no watches
of its own, and hears their changes from it."""

from __future__ import annotations

import asyncio

from moor.cluster.api import KubeApi
from moor.cluster.cache import LiveCache, LiveChange
from moor.cluster.client import KubeClient
from moor.cluster.config import Credentials
from moor.objects import KubeObject
from moor.resources import API_VERSION, SYNC
from moor.web.ui.cluster_view import ClusterView

UNREACHABLE = Credentials(server="https://127.0.0.1:9", insecure=True)
"""Nothing listens there: the view must not need the API server for what it reads from the controller."""


class Informers:
    """What the controller's informers hold (Controller.objects and Controller.lookup), by kind."""

    def __init__(self, *objects: KubeObject) -> None:
        self.held = list(objects)

    def objects(self, kind: str) -> list[KubeObject]:
        return [obj for obj in self.held if obj["kind"] == kind]

    def lookup(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        wanted = (kind, namespace, name)
        found = (o for o in self.held if (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) == wanted)
        return next(found, None)


def sync(name: str) -> KubeObject:
    return {"apiVersion": API_VERSION, "kind": SYNC.kind, "metadata": {"namespace": "apps", "name": name}}


def test_the_view_reads_the_controllers_informers_and_tells_their_changes() -> None:
    async def scenario() -> None:
        async with KubeClient(UNREACHABLE) as client:
            api = KubeApi(client)
            informers = Informers(sync("web"))
            view = ClusterView(api, LiveCache(api), watch_managed_kinds=False, shared=informers)
            await view.start()  # no discovery, no watch: the API server is not asked anything
            heard: list[LiveChange] = []
            view.subscribe(heard.append)
            before = view.position
            assert [obj["metadata"]["name"] for obj in view.objects(SYNC.kind)] == ["web"]

            informers.held.append(sync("api"))
            change = LiveChange("ADDED", sync("api"), None)
            view.custom_resource_changed(change)

            assert view.lookup(SYNC.kind, "apps", "api") == sync("api")
            assert heard == [change] and view.position != before and not view.problems()
            assert client.requests.total() == 0
            await view.stop()

    asyncio.run(scenario())
