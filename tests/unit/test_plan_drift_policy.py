"""Drift policy: correct, alert or ignore drift; always write what Git asks for; leave ignored fields alone."""

from __future__ import annotations

import copy

from moor.objects import DRIFT_ANNOTATION, ObjectRef
from moor.plan import Action, decide_drift, may_have_drifted, plan_changes
from tests.unit.fixtures import load

REPLICAS = "/spec/replicas"
WEB = "/spec/template/spec/containers/name=web"


def edited_plan(desired: dict | None = None):  # type: ignore[no-untyped-def]
    desired = desired or load("deployment-web-desired")
    desired["metadata"].setdefault("namespace", "guestbook")
    live = load("deployment-web-edited")
    ref = ObjectRef.of(live)
    return plan_changes([desired], {ref.identity: live}, [ref]), ref


def no_ignores(_: ObjectRef) -> tuple[str, ...]:
    return ()


def test_correct_mode_writes_drift_back_and_reports_it_as_corrected() -> None:
    plan, ref = edited_plan()
    decision = decide_drift(plan, inventory=[ref], git_moved=False, mode="correct", ignored_paths=no_ignores)
    assert [change.ref for change in decision.writes] == [ref]
    [drift] = decision.corrected
    assert drift.manager == "kubectl-edit" and REPLICAS in drift.paths
    assert decision.reported == ()


def test_alert_mode_reports_and_writes_nothing() -> None:
    plan, ref = edited_plan()
    decision = decide_drift(plan, inventory=[ref], git_moved=False, mode="alert", ignored_paths=no_ignores)
    assert decision.writes == ()
    assert [drift.manager for drift in decision.reported] == ["kubectl-edit"]


def test_ignore_mode_neither_writes_nor_reports() -> None:
    plan, ref = edited_plan()
    decision = decide_drift(plan, inventory=[ref], git_moved=False, mode="ignore", ignored_paths=no_ignores)
    assert (decision.writes, decision.corrected, decision.reported) == ((), (), ())


def test_a_new_revision_is_always_written_whatever_the_mode() -> None:
    plan, ref = edited_plan()
    decision = decide_drift(plan, inventory=[ref], git_moved=True, mode="alert", ignored_paths=no_ignores)
    assert [change.ref for change in decision.writes] == [ref]
    assert decision.corrected == decision.reported == ()


def test_an_object_annotation_overrides_the_sync_mode() -> None:
    desired = load("deployment-web-desired")
    desired["metadata"]["annotations"] = {DRIFT_ANNOTATION: "alert"}
    plan, ref = edited_plan(desired)
    decision = decide_drift(plan, inventory=[ref], git_moved=False, mode="correct", ignored_paths=no_ignores)
    assert decision.writes == ()
    assert "kubectl-edit" in {drift.manager for drift in decision.reported}


def test_ignored_fields_are_never_reported_and_left_out_of_the_apply() -> None:
    plan, ref = edited_plan()

    def ignore_replicas(target: ObjectRef) -> tuple[str, ...]:
        return (REPLICAS,) if target == ref else ()

    decision = decide_drift(plan, inventory=[ref], git_moved=False, mode="correct", ignored_paths=ignore_replicas)
    [write] = decision.writes
    assert "replicas" not in write.desired["spec"]
    assert all(REPLICAS not in drift.paths for drift in decision.corrected)
    assert any(f"{WEB}/env/name=LOG_LEVEL/value" in drift.paths for drift in decision.corrected)


def test_only_ignored_differences_means_nothing_to_do() -> None:
    desired = load("deployment-web-desired")
    live = load("deployment-web-edited")
    desired["metadata"].setdefault("namespace", "guestbook")
    # Make the env var agree, so replicas is the only difference left.
    live_env = copy.deepcopy(live["spec"]["template"]["spec"]["containers"][0]["env"])
    desired["spec"]["template"]["spec"]["containers"][0]["env"] = live_env
    ref = ObjectRef.of(live)
    plan = plan_changes([desired], {ref.identity: live}, [ref])
    decision = decide_drift(plan, inventory=[ref], git_moved=False, mode="correct", ignored_paths=lambda _: (REPLICAS,))
    assert decision.writes == decision.corrected == decision.reported == ()


def test_a_deleted_managed_object_is_drift_and_a_new_object_is_not() -> None:
    desired = load("deployment-web-desired")
    desired["metadata"].setdefault("namespace", "guestbook")
    ref = ObjectRef.of(desired)
    plan = plan_changes([desired], {}, [ref])
    assert [change.action for change in plan.changes] == [Action.CREATE]
    deleted = decide_drift(plan, inventory=[ref], git_moved=False, mode="alert", ignored_paths=no_ignores)
    assert deleted.writes == ()
    assert [drift.paths for drift in deleted.reported] == [("/",)]
    brand_new = decide_drift(plan, inventory=[], git_moved=False, mode="alert", ignored_paths=no_ignores)
    assert [change.ref for change in brand_new.writes] == [ref]


def test_only_changes_to_fields_moor_applied_count_as_possible_drift() -> None:
    live = load("deployment-web-live")
    status_only = copy.deepcopy(live)
    status_only["status"]["readyReplicas"] = 0
    status_only["metadata"]["resourceVersion"] = "999"
    assert not may_have_drifted(live, status_only)
    annotated = copy.deepcopy(live)  # what the Deployment controller does to every Deployment
    annotated["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "2"
    assert not may_have_drifted(live, annotated)
    assert may_have_drifted(live, load("deployment-web-edited")), "kubectl edit took spec.replicas from moor"
    unmanaged = copy.deepcopy(live)  # an object Moor holds no field set for: anything beyond status counts
    unmanaged["metadata"]["managedFields"] = []
    unmanaged_annotated = copy.deepcopy(unmanaged)
    unmanaged_annotated["metadata"]["annotations"] = {"x": "y"}
    assert may_have_drifted(unmanaged, unmanaged_annotated)
    assert not may_have_drifted(None, live), "an object appearing is no drift"


def test_a_secret_key_declared_in_string_data_and_changed_in_data_may_be_drift() -> None:
    """The server records Moor's `stringData` keys under f:stringData and stores them in data: the field
    set stays the same when someone else writes the key."""
    mine = {"manager": "moor", "operation": "Apply", "apiVersion": "v1", "fieldsV1": {"f:stringData": {"f:token": {}}}}
    live = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "token", "namespace": "team", "managedFields": [mine]},
        "data": {"token": "czNjcjN0", "other": "eA=="},
    }
    patched = copy.deepcopy(live)
    patched["data"]["token"] = "Y2hhbmdlZA=="
    patched["metadata"]["managedFields"].append(
        {"manager": "kubectl-patch", "operation": "Update", "apiVersion": "v1", "fieldsV1": {"f:data": {"f:token": {}}}}
    )
    assert may_have_drifted(live, patched)
    removed = copy.deepcopy(live)
    del removed["data"]["token"]
    assert may_have_drifted(live, removed)
    someone_elses_key = copy.deepcopy(live)
    someone_elses_key["data"]["other"] = "eQ=="
    assert not may_have_drifted(live, someone_elses_key), "a key Moor does not declare is not its drift"


def test_moor_s_own_bucket_label_missing_is_written_in_every_mode_and_is_no_drift() -> None:
    """Objects an older Moor applied lack moor.dev/shard-bucket: the next pass adds it, even in alert mode."""
    desired = load("deployment-web-desired")
    desired["metadata"].setdefault("namespace", "guestbook")
    desired["metadata"].setdefault("labels", {})["moor.dev/shard-bucket"] = "17"
    live = copy.deepcopy(desired)
    del live["metadata"]["labels"]["moor.dev/shard-bucket"]
    ref = ObjectRef.of(live)
    plan = plan_changes([desired], {ref.identity: live}, [ref])
    for mode in ("correct", "alert", "ignore"):
        decision = decide_drift(plan, inventory=[ref], git_moved=False, mode=mode, ignored_paths=no_ignores)
        assert [change.ref for change in decision.writes] == [ref], mode
        assert decision.corrected == decision.reported == (), mode
    edited, ref = edited_plan()
    decision = decide_drift(edited, inventory=[ref], git_moved=False, mode="alert", ignored_paths=no_ignores)
    assert decision.writes == (), "other drift is still only reported"
