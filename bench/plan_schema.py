"""What comparing by the API's schema costs the planner: `plan_changes` over N objects with and without schemas.

Every object is compared afresh (no remembered comparisons), the worst case of a pass after a new commit;
the figures are CPU time of this process, so that other work on the machine weighs less. The schemas are
the OpenAPI v3 documents saved from the real API server for the unit tests (tests/unit/fixtures/
openapi-v3-*.json); "cold" is the first plan under freshly read schemas (their nodes are resolved as
fields are met), "warm" a plan after it.

Run: .venv/bin/python bench/plan_schema.py [--objects N] [--repeat R]
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moor.objects import KubeObject, ObjectRef
from moor.plan import DesiredSet, GroupVersionSchema, Schemas, plan_changes

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "unit" / "fixtures"


def read_schemas() -> Schemas:
    documents = {"v1": "api-v1", "apps/v1": "apps-v1"}
    return Schemas.of(
        GroupVersionSchema.from_document(
            api_version, json.loads((FIXTURES / f"openapi-v3-{name}.json").read_text()), name
        )
        for api_version, name in documents.items()
    )


def deployment(index: int) -> KubeObject:
    labels = {"app": f"web-{index}"}
    container = {
        "name": "web",
        "image": "nginx:1.27",
        "ports": [{"containerPort": 80}],
        "env": [{"name": "INDEX", "value": str(index)}, {"name": "TIER", "value": "frontend"}],
        "resources": {"requests": {"cpu": "0.1", "memory": "64Mi"}, "limits": {"cpu": "0.5", "memory": "128Mi"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"web-{index}",
            "namespace": f"team-{index % 7}",
            "labels": {**labels, "tier": "frontend"},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def config_map(index: int) -> KubeObject:
    data = {f"key-{n}": f"value-{index}-{n}" for n in range(8)}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"settings-{index}", "namespace": f"team-{index % 7}"},
        "data": data,
    }


def service(index: int) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"web-{index}", "namespace": f"team-{index % 7}"},
        "spec": {"selector": {"app": f"web-{index}"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def as_stored(obj: KubeObject) -> KubeObject:
    """The object as the API server returns it: canonical quantities, defaults, bookkeeping."""
    live = copy.deepcopy(obj)
    live["metadata"].update(uid="0000", resourceVersion="1", creationTimestamp="2026-01-01T00:00:00Z")
    if obj["kind"] == "Deployment":
        pod = live["spec"]["template"]["spec"]
        pod.update(restartPolicy="Always", dnsPolicy="ClusterFirst", terminationGracePeriodSeconds=30)
        container = pod["containers"][0]
        container["resources"] = {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        }
        container["ports"][0]["protocol"] = "TCP"
        container.update(terminationMessagePath="/dev/termination-log", imagePullPolicy="IfNotPresent")
    if obj["kind"] == "Service":
        live["spec"]["ports"][0]["protocol"] = "TCP"
        live["spec"].update(type="ClusterIP", clusterIP="10.0.0.1", sessionAffinity="None")
    return live


def objects(count: int) -> list[KubeObject]:
    makers: list[Callable[[int], KubeObject]] = [deployment, config_map, service]
    return [makers[index % 3](index) for index in range(count)]


def cpu_seconds(action: Callable[[], Any]) -> float:
    started = time.process_time()
    action()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    desired = DesiredSet.of(objects(args.objects))
    live = {ObjectRef.of(obj).identity: as_stored(obj) for obj in desired.objects}
    inventory = list(desired.refs)

    def plan(schemas: Schemas | None) -> None:
        result = plan_changes(desired, live, inventory, schemas=schemas)
        assert not result.has_changes, [str(d) for change in result.updates for d in change.differences][:5]

    without: list[float] = []
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(args.repeat):  # interleaved, so that a busy moment of the machine weighs on all three
        without.append(cpu_seconds(lambda: plan(None)))
        schemas = read_schemas()
        cold.append(cpu_seconds(functools.partial(plan, schemas)))
        warm.append(cpu_seconds(functools.partial(plan, schemas)))
    rows = [
        ("without schemas (field names)", statistics.median(without)),
        ("with schemas, cold (first plan)", statistics.median(cold)),
        ("with schemas, warm", statistics.median(warm)),
    ]
    reading = statistics.median(cpu_seconds(read_schemas) for _ in range(args.repeat))
    print(f"plan_changes over {args.objects} objects, CPU time (median of {args.repeat}), every object compared afresh")
    base = rows[0][1]
    for label, value in rows:
        print(f"  {label:<34} {value * 1000:8.1f} ms   {value / base:5.2f}x")
    print(f"  {'reading the saved documents':<34} {reading * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
