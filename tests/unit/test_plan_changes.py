"""Planning a reconcile: what to create, update, leave alone, prune, or keep."""

from typing import Any

import pytest

from moor.objects import Identity, ObjectRef
from moor.plan import Action, DuplicateObjectError, Plan, new_inventory, plan_changes
from tests.unit.fixtures import load

SYNC = "moor-system.guestbook"


def obj(api_version: str, kind: str, name: str, namespace: str = "", **metadata: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"moor.dev/sync": SYNC}, **metadata}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def live_map(*objects: dict[str, Any]) -> dict[Identity, dict[str, Any]]:
    return {ObjectRef.of(o).identity: o for o in objects}


def names(changes: tuple[Any, ...]) -> list[str]:
    return [str(change.ref) for change in changes]


def test_creates_updates_and_unchanged_objects_in_desired_order() -> None:
    config = obj("v1", "ConfigMap", "settings", "guestbook")
    config["data"] = {"mode": "fast"}
    live_config = obj("v1", "ConfigMap", "settings", "guestbook")
    live_config["data"] = {"mode": "slow"}
    service = obj("v1", "Service", "web", "guestbook")
    desired = [config, load("deployment-web-desired"), service]
    plan = plan_changes(desired, live_map(live_config, load("deployment-web-live")), [])
    assert names(plan.creates) == ["Service guestbook/web"]
    assert names(plan.updates) == ["ConfigMap guestbook/settings"]
    assert [str(d) for d in plan.updates[0].differences] == ['/data/mode: Git declares "fast", the cluster has "slow"']
    assert names(plan.unchanged) == ["Deployment.apps guestbook/web"]
    assert names(plan.writes) == ["ConfigMap guestbook/settings", "Service guestbook/web"]
    assert plan.has_changes
    assert plan.summary() == "1 to create, 1 to update"


def test_an_idle_reconcile_plans_nothing() -> None:
    plan = plan_changes([load("deployment-web-desired")], live_map(load("deployment-web-live")), [])
    assert not plan.has_changes
    assert plan.writes == ()
    assert plan.summary() == "no changes (1 object up to date)"


def test_objects_are_matched_across_api_versions() -> None:
    desired = obj("autoscaling/v2", "HorizontalPodAutoscaler", "web", "guestbook")
    live = obj("autoscaling/v1", "HorizontalPodAutoscaler", "web", "guestbook")
    plan = plan_changes([desired], live_map(live), [ObjectRef.of(live)])
    assert [c.action for c in plan.changes] == [Action.UNCHANGED]


def test_objects_gone_from_git_are_pruned_only_when_in_the_inventory_and_live() -> None:
    old = obj("v1", "ConfigMap", "old", "guestbook")
    stray = obj("v1", "ConfigMap", "stray", "guestbook")  # labelled, but never in the inventory
    gone = ObjectRef("", "v1", "ConfigMap", "guestbook", "already-gone")
    plan = plan_changes([], live_map(old, stray), [ObjectRef.of(old), gone])
    assert names(plan.prunes) == ["ConfigMap guestbook/old"]
    assert plan.prunes[0].live is old
    assert plan.summary() == "1 to prune"


def test_prunes_go_custom_resources_before_crds_and_objects_before_namespaces() -> None:
    crd = obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com")
    namespace = obj("v1", "Namespace", "guestbook")
    widget = obj("example.com/v1", "Widget", "w", "guestbook")
    deployment = obj("apps/v1", "Deployment", "web", "guestbook")
    config = obj("v1", "ConfigMap", "settings", "guestbook")
    role = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "reader")
    webhook = obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "widgets")
    everything = [crd, namespace, widget, deployment, config, role, webhook]
    inventory = new_inventory(everything)
    plan = plan_changes([], live_map(*everything), inventory)
    assert names(plan.prunes) == [
        "ValidatingWebhookConfiguration.admissionregistration.k8s.io widgets",
        "Deployment.apps guestbook/web",
        "Widget.example.com guestbook/w",
        "ConfigMap guestbook/settings",
        "ClusterRole.rbac.authorization.k8s.io reader",
        "CustomResourceDefinition.apiextensions.k8s.io widgets.example.com",
        "Namespace guestbook",
    ]


def test_prune_disabled_objects_are_kept_with_the_reason() -> None:
    protected = obj("v1", "PersistentVolumeClaim", "data", "guestbook", annotations={"moor.dev/prune": "disabled"})
    plan = plan_changes([], live_map(protected), [ObjectRef.of(protected)])
    assert plan.prunes == ()
    [kept] = plan.kept
    assert kept.action is Action.KEEP
    assert kept.reason == "annotated moor.dev/prune: disabled"
    assert str(kept) == "PersistentVolumeClaim guestbook/data: keep (annotated moor.dev/prune: disabled)"
    assert not plan.has_changes
    assert plan.summary() == "no changes (0 objects up to date), 1 kept from pruning"


def test_objects_another_sync_took_over_are_kept_not_pruned() -> None:
    taken = obj("v1", "ConfigMap", "shared", "guestbook")
    taken["metadata"]["labels"]["moor.dev/sync"] = "moor-system.other"
    plan = plan_changes([], live_map(taken), [ObjectRef.of(taken)], sync_key=SYNC)
    assert [(c.action, c.reason) for c in plan.changes] == [
        (Action.KEEP, "now labelled moor.dev/sync: moor-system.other")
    ]


def test_objects_already_being_deleted_are_not_pruned_again() -> None:
    leaving = obj("v1", "ConfigMap", "old", "guestbook", deletionTimestamp="2026-11-03T10:00:00Z")
    assert plan_changes([], live_map(leaving), [ObjectRef.of(leaving)]).changes == ()


def test_a_desired_object_is_never_pruned_even_under_another_version() -> None:
    desired = obj("autoscaling/v2", "HorizontalPodAutoscaler", "web", "guestbook")
    recorded = ObjectRef("autoscaling", "v1", "HorizontalPodAutoscaler", "guestbook", "web")
    plan = plan_changes([desired], live_map(desired), [recorded])
    assert plan.prunes == ()


def test_duplicate_desired_objects_are_refused() -> None:
    config = obj("v1", "ConfigMap", "settings", "guestbook")
    with pytest.raises(DuplicateObjectError):
        plan_changes([config, dict(config)], {}, [])


def test_the_summary_counts_every_kind_of_change() -> None:
    plan = plan_changes(
        [obj("v1", "ConfigMap", "a", "ns"), obj("v1", "ConfigMap", "b", "ns")],
        live_map(
            obj("v1", "ConfigMap", "c", "ns"), obj("v1", "ConfigMap", "d", "ns"), obj("v1", "ConfigMap", "e", "ns")
        ),
        [ObjectRef("", "v1", "ConfigMap", "ns", n) for n in "cde"],
    )
    assert plan.summary() == "2 to create, 3 to prune"
    assert isinstance(plan, Plan)


def test_new_inventory_is_sorted_and_unique() -> None:
    objects = [
        obj("v1", "ConfigMap", "b", "ns"),
        obj("apps/v1", "Deployment", "a", "ns"),
        obj("v1", "ConfigMap", "a", "ns"),
    ]
    inventory = new_inventory(objects)
    assert inventory == sorted(inventory)
    assert inventory[0].to_dict() == {
        "group": "",
        "version": "v1",
        "kind": "ConfigMap",
        "name": "a",
        "namespace": "ns",
    }


def contested_fixture() -> tuple[dict[str, Any], dict[str, Any]]:
    desired = obj("v1", "ConfigMap", "shared", "dual")
    desired["data"] = {"from": "b"}
    live = obj("v1", "ConfigMap", "shared", "dual")
    live["metadata"]["labels"] = {"moor.dev/sync": "dual.a"}
    live["data"] = {"from": "a"}
    return desired, live


def test_an_object_another_sync_still_declares_is_contested_and_not_written() -> None:
    desired, live = contested_fixture()
    plan = plan_changes([desired], live_map(live), [], sync_key=SYNC, still_claimed=lambda owner, _: owner == "dual.a")
    assert [(c.action, c.owner) for c in plan.changes] == [(Action.CONTESTED, "dual.a")]
    assert "moor.dev/sync=dual.a" in plan.contested[0].reason
    assert plan.writes == () and not plan.has_changes
    assert plan.summary().endswith("1 owned by another Sync")


def test_an_object_its_owner_released_is_taken_over() -> None:
    desired, live = contested_fixture()
    plan = plan_changes([desired], live_map(live), [], sync_key=SYNC, still_claimed=lambda owner, _: False)
    assert names(plan.updates) == ["ConfigMap dual/shared"]


def test_a_sync_that_takes_over_writes_the_contested_object() -> None:
    desired, live = contested_fixture()
    plan = plan_changes([desired], live_map(live), [], sync_key=SYNC, still_claimed=lambda *_: True, take_over=True)
    assert names(plan.updates) == ["ConfigMap dual/shared"] and plan.contested == ()


def test_an_object_labelled_for_another_sync_is_never_pruned() -> None:
    _, live = contested_fixture()
    plan = plan_changes([], live_map(live), [ObjectRef.of(live)], sync_key=SYNC, still_claimed=lambda *_: True)
    assert plan.prunes == () and names(plan.kept) == ["ConfigMap dual/shared"]
