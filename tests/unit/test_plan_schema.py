"""Comparison follows the API's schema: list keys, quantities and int-or-strings as the API declares them.

The documents under fixtures/ were saved from the API server `make setup` builds (`kubectl get --raw
/openapi/v3/api/v1`, `.../apis/apps/v1`, and `.../apis/example.com/v1` once fixtures/crd-releases.yaml was
applied), then trimmed to the definitions LimitRange, Service, ConfigMap, Deployment and Release reach, and
stripped of descriptions.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from moor.objects import ObjectRef
from moor.plan import Action, GroupVersionSchema, RememberedComparisons, Schemas, compare, plan_changes
from moor.plan.schema import UNTYPED, ListType

FIXTURES = Path(__file__).parent / "fixtures"


def group_version(api_version: str, name: str, source: str = "saved") -> GroupVersionSchema:
    document = json.loads((FIXTURES / f"openapi-v3-{name}.json").read_text())
    return GroupVersionSchema.from_document(api_version, document, source)


SCHEMAS = Schemas.of(
    [
        group_version("v1", "api-v1"),
        group_version("apps/v1", "apps-v1"),
        group_version("example.com/v1", "releases"),
    ]
)


def release(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Release",
        "metadata": {"name": "r", "namespace": "ns"},
        "spec": spec,
    }


def differences(desired: dict[str, Any], live: dict[str, Any], schemas: Schemas | None = SCHEMAS) -> list[str]:
    schema = schemas.for_kind(desired["apiVersion"], desired["kind"]) if schemas is not None else None
    return [str(difference) for difference in compare(desired, live, schema=schema)]


def test_a_custom_resource_map_named_default_holds_strings_not_quantities() -> None:
    desired, live = release(default={"version": "1.10"}), release(default={"version": "1.1"})
    assert differences(desired, live) == ['/spec/default/version: Git declares "1.10", the cluster has "1.1"']
    assert differences(desired, live, schemas=None) == [], "by name, `default` was taken for a quantity map"


def test_a_custom_resource_map_named_limits_compares_its_strings_exactly() -> None:
    desired, live = release(limits={"cpu": "0.5", "tier": "1e3"}), release(limits={"cpu": "500m", "tier": "1000"})
    assert differences(desired, live) == [
        '/spec/limits/cpu: Git declares "0.5", the cluster has "500m"',
        '/spec/limits/tier: Git declares "1e3", the cluster has "1000"',
    ]


def deployment(cpu: str, memory: str) -> dict[str, Any]:
    container = {"name": "web", "image": "nginx", "resources": {"limits": {"cpu": cpu, "memory": memory}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


def test_quantities_of_built_in_kinds_are_still_compared_as_the_server_stores_them() -> None:
    assert differences(deployment("0.5", "1Gi"), deployment("500m", "1024Mi")) == []
    assert differences(deployment("0.5", "1Gi"), deployment("600m", "1Gi")) == [
        '/spec/template/spec/containers/name=web/resources/limits/cpu: Git declares "0.5", the cluster has "600m"'
    ]
    limit_range: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "limits", "namespace": "ns"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "0.5"}, "max": {"memory": "1Gi"}}]},
    }
    canonical = copy.deepcopy(limit_range)
    canonical["spec"]["limits"][0].update(default={"cpu": "500m"}, max={"memory": "1024Mi"})
    assert differences(limit_range, canonical) == [], "LimitRange's `default` is a map of quantities"


def test_list_map_keys_come_from_the_schema() -> None:
    desired = release(endpoints=[{"name": "a", "protocol": "UDP", "port": 53}, {"name": "a", "port": 80}])
    reordered = release(
        endpoints=[{"name": "a", "protocol": "TCP", "port": 80}, {"name": "a", "protocol": "UDP", "port": 53}]
    )
    assert differences(desired, reordered) == [], "matched by name and protocol (defaulted to TCP), not position"
    changed = copy.deepcopy(reordered)
    changed["spec"]["endpoints"][1]["port"] = 5353
    assert differences(desired, changed) == [
        "/spec/endpoints/name=a,protocol=UDP/port: Git declares 53, the cluster has 5353"
    ]
    assert differences(desired, reordered, schemas=None) != [], "by name, `endpoints` was an atomic list"


def test_a_list_the_schema_declares_atomic_is_compared_by_position_whatever_its_name() -> None:
    desired = release(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    live = release(containers=[{"name": "b", "image": "y"}, {"name": "a", "image": "x"}])
    assert differences(desired, live)[:2] == [
        '/spec/containers/0/name: Git declares "a", the cluster has "b"',
        '/spec/containers/0/image: Git declares "x", the cluster has "y"',
    ], "position by position"
    assert differences(desired, live, schemas=None) == [], "by name, `containers` was keyed by name"


def test_sets_come_from_the_schema() -> None:
    assert differences(release(tags=["a", "b"]), release(tags=["b", "c", "a"])) == []
    assert differences(release(tags=["a", "d"]), release(tags=["b", "a"])) == [
        '/spec/tags/["d"]: Git declares "d", the cluster has nothing'
    ]


def test_int_or_string_comes_from_the_schema() -> None:
    assert differences(release(window=8080), release(window="8080")) == []
    assert differences(release(port="8080"), release(port=8080)) == [
        '/spec/port: Git declares "8080", the cluster has 8080'
    ], "a string field named `port` is not an int-or-string"
    assert differences(release(port="8080"), release(port=8080), schemas=None) == [], "by name it was"
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {"ports": [{"port": 80, "targetPort": "8080"}]},
    }
    live = copy.deepcopy(service)
    live["spec"]["ports"][0].update(targetPort=8080, protocol="TCP")
    assert differences(service, live) == [], "IntOrString, and ports keyed by port and protocol"


def test_zero_values_a_custom_resource_declares_are_values() -> None:
    desired = release(window=0, port="", tags=[], default={}, extra={"paused": False})
    desired["metadata"]["labels"] = {}
    live = release(extra={})
    assert differences(desired, live) == [
        "/spec/window: Git declares 0, the cluster has nothing",
        '/spec/port: Git declares "", the cluster has nothing',
        "/spec/tags: Git declares [], the cluster has nothing",
        "/spec/default: Git declares {}, the cluster has nothing",
        "/spec/extra/paused: Git declares false, the cluster has nothing",
    ], "stored as sent, so an absent field differs; metadata (a Go type) drops empty labels"
    assert differences(desired, live, schemas=None) == [], "by name, zero values were taken as dropped"
    paused: dict[str, Any] = deployment("0.5", "1Gi")
    paused["spec"]["paused"] = False
    assert differences(paused, deployment("0.5", "1Gi")) == [], "a built-in kind drops it"


def test_fields_the_schema_leaves_open_compare_exactly() -> None:
    desired = release(extra={"limits": {"cpu": "0.5"}, "containers": [{"name": "a"}, {"name": "b"}]})
    live = release(extra={"limits": {"cpu": "500m"}, "containers": [{"name": "b"}, {"name": "a"}]})
    assert differences(desired, live) == [
        '/spec/extra/limits/cpu: Git declares "0.5", the cluster has "500m"',
        '/spec/extra/containers/0/name: Git declares "a", the cluster has "b"',
        '/spec/extra/containers/1/name: Git declares "b", the cluster has "a"',
    ]


def test_what_the_schema_answers() -> None:
    pod_spec = SCHEMAS.for_kind("apps/v1", "Deployment")
    assert pod_spec is not None
    containers = pod_spec.field("spec").field("template").field("spec").field("containers")
    assert (containers.list_type, containers.list_keys) == (ListType.MAP, ("name",))
    ports = containers.items.field("ports")
    assert (ports.list_type, ports.list_keys) == (ListType.MAP, ("containerPort", "protocol"))
    assert containers.items.field("resources").field("limits").field("cpu").quantity
    assert not containers.items.field("image").quantity
    assert containers.items.field("nosuchfield") is UNTYPED
    labels = pod_spec.field("metadata").field("labels")
    assert labels.field("app") is labels.field("tier"), "every entry of a map has the one schema of its values"
    assert SCHEMAS.for_kind("example.com/v2", "Release") is None
    assert SCHEMAS.for_kind("v1", "NoSuchKind") is None


def test_a_kind_without_a_schema_is_compared_by_field_names() -> None:
    desired: dict[str, Any] = {
        "apiVersion": "other.io/v1",
        "kind": "Thing",
        "metadata": {"name": "t"},
        "spec": {"limits": {"cpu": "0.5"}},
    }
    live = copy.deepcopy(desired)
    live["spec"]["limits"]["cpu"] = "500m"
    ref = ObjectRef.of(desired)
    plan = plan_changes([desired], {ref.identity: live}, [ref], schemas=SCHEMAS)
    assert [change.action for change in plan.changes] == [Action.UNCHANGED]


def test_the_planner_writes_a_custom_resource_whose_string_changed() -> None:
    desired, live = release(default={"version": "1.10"}), release(default={"version": "1.1"})
    ref = ObjectRef.of(desired)
    plan = plan_changes([desired], {ref.identity: live}, [ref], schemas=SCHEMAS)
    assert [change.action for change in plan.changes] == [Action.UPDATE]
    assert [str(difference.path) for difference in plan.updates[0].differences] == ["/spec/default/version"]


def test_remembered_comparisons_are_made_again_when_the_schema_changes() -> None:
    desired, live = release(default={"version": "1.10"}), release(default={"version": "1.1"})
    live["metadata"]["resourceVersion"] = "7"
    ref = ObjectRef.of(desired)
    remembered = RememberedComparisons()
    first = plan_changes([desired], {ref.identity: live}, [ref], remembered=remembered, schemas=Schemas())
    assert first.updates == (), "no schema published: compared by field names"
    published = Schemas.of([group_version("example.com/v1", "releases", source="hash-after-crd-update")])
    second = plan_changes([desired], {ref.identity: live}, [ref], remembered=remembered, schemas=published)
    assert [change.action for change in second.changes] == [Action.UPDATE], "not the remembered answer"
    third = plan_changes([desired], {ref.identity: live}, [ref], remembered=remembered, schemas=published)
    assert third.updates[0].differences is second.updates[0].differences, "remembered under the same schema"


def test_metadata_lists_follow_object_meta() -> None:
    desired = release()
    desired["metadata"]["finalizers"] = ["example.com/a"]
    live = release()
    live["metadata"]["finalizers"] = ["other/b", "example.com/a"]
    assert differences(desired, live) == [], "finalizers are a set in ObjectMeta"
