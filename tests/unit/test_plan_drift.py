"""Drift: who changed a field Moor declares, and leaving ignored fields to their owners."""

from moor.plan import attribute_drift, compare, remove_fields, without_ignored
from tests.unit.fixtures import load

WEB = "/spec/template/spec/containers/name=web"


def test_drift_names_the_manager_and_time_of_each_changed_field() -> None:
    live = load("deployment-web-edited")
    [drift] = attribute_drift(live, compare(load("deployment-web-desired"), live))
    assert drift.manager == "kubectl-edit"
    assert drift.at == "2026-11-03T16:02:44Z"
    assert set(drift.paths) == {"/spec/replicas", f"{WEB}/env/name=LOG_LEVEL/value"}
    assert not drift.inferred
    assert drift.to_dict() == {
        "group": "apps",
        "kind": "Deployment",
        "namespace": "guestbook",
        "name": "web",
        "paths": list(drift.paths),
        "manager": "kubectl-edit",
        "at": "2026-11-03T16:02:44Z",
    }
    assert str(drift).startswith("Deployment.apps guestbook/web: ")
    assert str(drift).endswith("changed by kubectl-edit at 2026-11-03T16:02:44Z")


def test_a_deleted_field_is_attributed_to_the_latest_writer_as_a_guess() -> None:
    live = load("deployment-web-live")
    # Someone removed the tolerations with an Update; no manager holds them any more.
    del live["spec"]["template"]["spec"]["tolerations"]
    live["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"].pop("f:tolerations")
    live["metadata"]["managedFields"].append(
        {"manager": "kubectl-patch", "operation": "Update", "time": "2026-11-04T08:00:00Z", "fieldsV1": {}}
    )
    differences = compare(load("deployment-web-desired"), live)
    assert [str(d.path) for d in differences] == ["/spec/template/spec/tolerations"]
    [drift] = attribute_drift(live, differences)
    assert (drift.manager, drift.inferred) == ("kubectl-patch", True)
    assert "probably kubectl-patch" in str(drift)


def test_drift_with_no_possible_author_is_unknown() -> None:
    live = load("deployment-web-live")
    live["metadata"]["managedFields"] = []
    live["spec"]["replicas"] = 1
    [drift] = attribute_drift(live, compare(load("deployment-web-desired"), live))
    assert drift.manager == ""
    assert drift.to_dict()["manager"] == "unknown"
    assert "at" not in drift.to_dict()


def test_ignored_paths_drop_the_differences_at_and_under_them() -> None:
    differences = compare(load("deployment-web-desired"), load("deployment-web-edited"))
    assert [str(d.path) for d in without_ignored(differences, ["/spec/replicas"])] == [
        f"{WEB}/env/name=LOG_LEVEL/value"
    ]
    assert without_ignored(differences, ["/spec"]) == []


def test_removing_ignored_fields_from_the_object_to_apply() -> None:
    desired = load("deployment-web-desired")
    trimmed = remove_fields(
        desired,
        [
            "/spec/replicas",
            f"{WEB}/env/name=LOG_LEVEL",
            f"{WEB}/volumeMounts/mountPath=~1etc~1guestbook",
            "/spec/template/spec/containers/name=metrics/ports/containerPort=9102,protocol=TCP",
            "/metadata/annotations/example.com~1owner",
            "/spec/template/spec/tolerations/0",
            "/spec/does/not/exist",
        ],
    )
    assert "replicas" not in trimmed["spec"]
    web, metrics = trimmed["spec"]["template"]["spec"]["containers"]
    assert [e["name"] for e in web["env"]] == ["WORKERS"]
    assert web["volumeMounts"] == []
    assert metrics["ports"] == []
    assert trimmed["metadata"]["annotations"] == {}
    assert trimmed["spec"]["template"]["spec"]["tolerations"] == []
    assert desired["spec"]["replicas"] == 3  # the original is untouched


def test_a_port_key_without_protocol_still_finds_the_defaulted_item() -> None:
    desired = load("deployment-web-desired")
    trimmed = remove_fields(desired, [f"{WEB}/ports/containerPort=8080,protocol=TCP/name"])
    assert trimmed["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 8080}]
