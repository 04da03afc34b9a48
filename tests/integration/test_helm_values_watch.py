"""`helm.valuesFrom` changes roll in at once: a ConfigMap or Secret labelled `moor.dev/watch: "true"`
is watched (one label-selected watch per kind, holding no values), and a change to its data wakes the
Syncs that name it in their valuesFrom, instead of waiting for their interval."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moor.cluster.api import KubeApi
from moor.cluster.client import KubeClient
from moor.cluster.config import load_kubeconfig
from moor.controller.values_watch import WATCH_LABEL, ValuesWatch
from moor.objects import KubeObject, ObjectRef
from tests.integration.test_helm_charts import chart_name, repository_and_sync, revision_prefix, settings, write_chart
from tests.support.cluster_fixtures import Kubectl
from tests.support.moor_fixtures import Moor, manifest
from tests.support.registry_fixtures import ChartServer


def sync_naming(namespace: str, name: str, *values_from: dict[str, str]) -> KubeObject:
    """A Sync as the runtime's informer holds it, with these valuesFrom entries."""
    spec = {"helm": {"valuesFrom": list(values_from)}}
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"namespace": namespace, "name": name},
        "spec": spec,
    }


async def test_a_change_to_a_labelled_values_object_wakes_the_syncs_that_name_it(
    kubeconfig: Path, kubectl: Kubectl, namespace: str
) -> None:
    def run(*args: str) -> None:
        kubectl(*args, "-n", namespace)

    run("create", "configmap", "web-values", "--from-literal=values.yaml=color: blue")
    run("label", "configmap", "web-values", f"{WATCH_LABEL}=true")
    run("create", "secret", "generic", "web-secrets", "--from-literal=values.yaml=password: s3cret-marker")
    run("label", "secret", "web-secrets", f"{WATCH_LABEL}=true")
    run("create", "configmap", "unwatched", "--from-literal=values.yaml=color: red")
    syncs = [
        sync_naming(
            namespace, "web", {"kind": "ConfigMap", "name": "web-values"}, {"kind": "Secret", "name": "web-secrets"}
        ),
        sync_naming(namespace, "other", {"kind": "ConfigMap", "name": "unwatched"}),
        sync_naming("elsewhere", "web", {"kind": "ConfigMap", "name": "web-values"}),  # another namespace's
    ]
    woken: list[str] = []
    arrived = asyncio.Event()

    def wake(sync: KubeObject) -> None:
        woken.append(str(ObjectRef.of(sync)))
        arrived.set()

    async def until(what: str, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    arrived.clear()
                    await arrived.wait()
        except TimeoutError:
            raise AssertionError(f"{what}: woken so far {woken}") from None

    async with KubeClient(load_kubeconfig(kubeconfig)) as client:
        watch = ValuesWatch(KubeApi(client), lambda: syncs, wake)
        await watch.start()
        try:
            web = str(ObjectRef.of(syncs[0]))
            await until("waking at the first list", lambda: woken.count(web) == 2)
            assert len(watch.objects()) == 2, "only the labelled objects are listed"
            woken.clear()

            data = '{"data":{"values.yaml":"color: green"}}'
            await asyncio.to_thread(run, "patch", "configmap", "web-values", "--type=merge", "-p", data)
            await until("the ConfigMap's Sync woken", lambda: woken == [web])
            secret_data = '{"stringData":{"values.yaml":"x: 1"}}'
            await asyncio.to_thread(run, "patch", "secret", "web-secrets", "-p", secret_data)
            await until("the Secret's Sync woken", lambda: woken == [web, web])

            # Not woken: metadata alone changed, or an object without the label. The ConfigMap's next data
            # change comes on the same watch after them, so it is the only one that counts.
            await asyncio.to_thread(run, "annotate", "configmap", "web-values", "note=only metadata")
            await asyncio.to_thread(run, "patch", "configmap", "unwatched", "--type=merge", "-p", data)
            again = '{"data":{"values.yaml":"color: purple"}}'
            await asyncio.to_thread(run, "patch", "configmap", "web-values", "--type=merge", "-p", again)
            await until("the ConfigMap's Sync woken again", lambda: len(woken) >= 3)
            assert woken == [web, web, web]
            await asyncio.to_thread(run, "delete", "secret", "web-secrets")
            await until("the deleted Secret's Sync woken", lambda: woken == [web] * 4)

            held = json.dumps(watch.objects())
            assert "color" not in held and "s3cret-marker" not in held, "the watch keeps no values"
            assert watch.problems() == []
        finally:
            await watch.stop()


def test_an_edit_to_a_watched_values_config_map_rolls_in_before_the_sync_interval(
    moor: Moor, chart_server: ChartServer, tmp_path: Path
) -> None:
    chart = chart_name(moor)
    chart_server.publish(write_chart(tmp_path, chart, "1.0.0"))
    values: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-values", "labels": {WATCH_LABEL: "true"}},
        "data": {"values.yaml": "color: blue\n"},
    }
    moor.apply(manifest(values))
    repository_and_sync(  # interval 1h: only the watch can bring the edit in within the test
        moor, chart_server, chart, "1.0.0", helm={"valuesFrom": [{"kind": "ConfigMap", "name": "web-values"}]}
    )
    moor.wait_condition("sync", "app", "True", revision=revision_prefix(chart, "1.0.0"), timeout=120)
    assert settings(moor)["color"] == "blue"

    moor.apply(manifest({**values, "data": {"values.yaml": "color: green\n"}}))
    moor.wait_for("the edited values applied", lambda: settings(moor).get("color") == "green", timeout=90)
