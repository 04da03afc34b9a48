"""Remembered comparisons: a pass where neither side changed reuses the last result, anything else compares again."""

import copy
from typing import Any

from moor.objects import ObjectRef
from moor.plan import Action, RememberedComparisons, plan_changes

SYNC = "apps.web"


def live_of(desired: dict[str, Any], data: dict[str, str], version: str) -> dict[str, Any]:
    live = copy.deepcopy(desired)
    live["metadata"]["resourceVersion"] = version
    live["data"] = data
    return live


def plan(desired: dict[str, Any], live: dict[str, Any], remembered: RememberedComparisons) -> Any:
    ref = ObjectRef.of(desired)
    return plan_changes([desired], {ref.identity: live}, [ref], remembered=remembered).changes[0]


def desired_settings(mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "apps", "labels": {"moor.dev/sync": SYNC}},
        "data": {"mode": mode},
    }


def test_the_same_desired_object_and_live_version_reuse_the_last_result() -> None:
    remembered = RememberedComparisons()
    desired = desired_settings("fast")
    first = plan(desired, live_of(desired, {"mode": "slow"}, "7"), remembered)
    # Same resourceVersion: the cache holds the same object; the result is the very same tuple.
    second = plan(desired, live_of(desired, {"mode": "slow"}, "7"), remembered)
    assert first.action is second.action is Action.UPDATE
    assert second.differences is first.differences


def test_a_new_live_version_is_compared_again() -> None:
    remembered = RememberedComparisons()
    desired = desired_settings("fast")
    assert plan(desired, live_of(desired, {"mode": "fast"}, "7"), remembered).action is Action.UNCHANGED
    changed = plan(desired, live_of(desired, {"mode": "slow"}, "8"), remembered)
    assert changed.action is Action.UPDATE
    assert [str(d.path) for d in changed.differences] == ["/data/mode"]


def test_a_new_render_with_the_same_content_reuses_the_result() -> None:
    remembered = RememberedComparisons()
    live = live_of(desired_settings("fast"), {"mode": "slow"}, "7")
    first = plan(desired_settings("fast"), live, remembered)
    assert plan(desired_settings("fast"), live, remembered).differences is first.differences


def test_a_desired_object_with_new_content_is_compared_again() -> None:
    remembered = RememberedComparisons()
    desired = desired_settings("fast")
    live = live_of(desired, {"mode": "fast"}, "7")
    assert plan(desired, live, remembered).action is Action.UNCHANGED
    assert plan(desired_settings("slow"), live, remembered).action is Action.UPDATE


def test_a_value_changing_type_only_is_compared_again() -> None:
    """1 == True in Python, but not in Kubernetes: the memory must not mistake one for the other."""
    remembered = RememberedComparisons()
    desired = desired_settings("fast") | {"spec": {"enabled": 1}}
    live = live_of(desired, {"mode": "fast"}, "7")
    assert plan(desired, live, remembered).action is Action.UNCHANGED
    assert plan(desired_settings("fast") | {"spec": {"enabled": True}}, live, remembered).action is Action.UPDATE


def test_a_live_object_without_a_version_is_never_taken_from_memory() -> None:
    remembered = RememberedComparisons()
    desired = desired_settings("fast")
    live = live_of(desired, {"mode": "fast"}, "")
    assert plan(desired, live, remembered).action is Action.UNCHANGED
    live["data"] = {"mode": "slow"}
    assert plan(desired, live, remembered).action is Action.UPDATE


def test_only_the_last_pass_is_remembered() -> None:
    remembered = RememberedComparisons()
    desired = desired_settings("fast")
    first = plan(desired, live_of(desired, {"mode": "slow"}, "7"), remembered)
    plan_changes([], {}, [], remembered=remembered)  # a pass without the object forgets it
    again = plan(desired, live_of(desired, {"mode": "slow"}, "7"), remembered)
    assert again.differences == first.differences
    assert again.differences is not first.differences
