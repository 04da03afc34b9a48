"""Comparing what Git declares with what the cluster has, as server-side apply sees it."""

import copy
from typing import Any

from moor.plan import ABSENT, DifferenceKind, compare
from tests.unit.fixtures import load

WEB = "/spec/template/spec/containers/name=web"


def by_path(differences: list[Any]) -> dict[str, Any]:
    return {str(d.path): d for d in differences}


def test_an_idle_applied_deployment_shows_no_difference() -> None:
    # Git writes cpu "0.5", memory 268435456 and 1073741824, ports without protocol; the cluster has
    # 500m, 256Mi, 1Gi, protocol TCP, and many defaulted fields, managedFields and status.
    assert compare(load("deployment-web-desired"), load("deployment-web-live")) == []


def test_a_changed_image_is_one_difference_at_the_containers_image() -> None:
    desired = load("deployment-web-desired")
    desired["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/example/guestbook:1.5.0"
    [difference] = compare(desired, load("deployment-web-live"))
    assert str(difference.path) == f"{WEB}/image"
    assert difference.kind is DifferenceKind.CHANGED
    assert difference.desired == "ghcr.io/example/guestbook:1.5.0"
    assert difference.live == "ghcr.io/example/guestbook:1.4.2"
    assert str(difference) == (
        f'{WEB}/image: Git declares "ghcr.io/example/guestbook:1.5.0", '
        'the cluster has "ghcr.io/example/guestbook:1.4.2"'
    )


def test_edits_made_with_kubectl_show_where_they_conflict_with_git() -> None:
    # kubectl edit set replicas to 5, LOG_LEVEL to debug and added DEBUG=1.
    differences = by_path(compare(load("deployment-web-desired"), load("deployment-web-edited")))
    assert set(differences) == {"/spec/replicas", f"{WEB}/env/name=LOG_LEVEL/value"}
    replicas = differences["/spec/replicas"]
    assert (replicas.desired, replicas.live, replicas.kind) == (3, 5, DifferenceKind.CHANGED)
    log_level = differences[f"{WEB}/env/name=LOG_LEVEL/value"]
    assert (log_level.desired, log_level.live) == ("info", "debug")
    # DEBUG is kubectl-edit's own env var: Git says nothing about it, applying would keep it.


def test_a_changed_replica_count_in_git_is_one_difference() -> None:
    desired = load("deployment-web-desired")
    desired["spec"]["replicas"] = 4
    [difference] = compare(desired, load("deployment-web-live"))
    assert (str(difference.path), difference.desired, difference.live) == ("/spec/replicas", 4, 3)


def test_a_field_moor_applied_and_git_dropped_is_a_difference_to_remove() -> None:
    desired = load("deployment-web-desired")
    del desired["spec"]["template"]["spec"]["tolerations"]
    del desired["metadata"]["annotations"]["example.com/owner"]
    differences = by_path(compare(desired, load("deployment-web-live")))
    assert set(differences) == {"/spec/template/spec/tolerations", "/metadata/annotations/example.com~1owner"}
    tolerations = differences["/spec/template/spec/tolerations"]
    assert tolerations.kind is DifferenceKind.REMOVED
    assert tolerations.desired is ABSENT
    assert tolerations.live[0]["key"] == "dedicated"
    assert str(differences["/metadata/annotations/example.com~1owner"]) == (
        '/metadata/annotations/example.com~1owner: no longer in Git, the cluster has "team-guestbook"'
    )


def test_a_container_removed_from_git_is_one_difference_for_the_whole_item() -> None:
    desired = load("deployment-web-desired")
    desired["spec"]["template"]["spec"]["containers"].pop()  # the metrics sidecar
    [difference] = compare(desired, load("deployment-web-live"))
    assert str(difference.path) == "/spec/template/spec/containers/name=metrics"
    assert difference.kind is DifferenceKind.REMOVED
    assert difference.live["image"] == "ghcr.io/example/exporter:0.9.0"


def test_fields_set_by_others_and_defaults_are_not_differences_when_git_drops_them() -> None:
    # Git never set imagePullPolicy or the revision annotation; dropping nothing changes nothing.
    live = load("deployment-web-live")
    live["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "2026-11-03T10:00:00Z"
    live["metadata"]["labels"]["team"] = "guestbook"
    assert compare(load("deployment-web-desired"), live) == []


def test_a_new_env_var_in_git_is_missing_from_the_cluster() -> None:
    desired = load("deployment-web-desired")
    desired["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "REGION", "value": "eu"})
    [difference] = compare(desired, load("deployment-web-live"))
    assert str(difference.path) == f"{WEB}/env/name=REGION"
    assert difference.kind is DifferenceKind.MISSING
    assert difference.desired == {"name": "REGION", "value": "eu"}
    assert difference.live is ABSENT


def test_list_maps_are_matched_by_key_not_position() -> None:
    live = load("deployment-web-live")
    containers = live["spec"]["template"]["spec"]["containers"]
    containers.reverse()
    containers[1]["env"].reverse()
    assert compare(load("deployment-web-desired"), live) == []


def test_a_port_is_matched_by_container_port_and_defaulted_protocol() -> None:
    desired = load("deployment-web-desired")
    desired["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] = "web"
    [difference] = compare(desired, load("deployment-web-live"))
    assert str(difference.path) == f"{WEB}/ports/containerPort=8080,protocol=TCP/name"


def test_an_atomic_list_of_a_different_length_is_one_difference_of_the_whole_list() -> None:
    desired = load("deployment-web-desired")
    desired["spec"]["template"]["spec"]["tolerations"].append({"key": "spot", "operator": "Exists"})
    [difference] = compare(desired, load("deployment-web-live"))
    assert str(difference.path) == "/spec/template/spec/tolerations"
    assert len(difference.desired) == 2
    assert len(difference.live) == 1


def test_an_atomic_list_is_compared_item_by_item_tolerating_defaults() -> None:
    desired = load("deployment-web-desired")
    desired["spec"]["template"]["spec"]["tolerations"][0]["value"] = "api"
    [difference] = compare(desired, load("deployment-web-live"))
    assert str(difference.path) == "/spec/template/spec/tolerations/0/value"


def test_scalar_lists_differ_as_a_whole() -> None:
    desired = load("deployment-web-desired")
    live = load("deployment-web-live")
    desired["spec"]["template"]["spec"]["containers"][0]["args"] = ["--port", "8080"]
    live["spec"]["template"]["spec"]["containers"][0]["args"] = ["--port", "9090"]
    [difference] = compare(desired, live)
    assert str(difference.path) == f"{WEB}/args"
    assert (difference.desired, difference.live) == (["--port", "8080"], ["--port", "9090"])


def test_nulls_and_zero_values_in_git_equal_absent_fields() -> None:
    desired = load("deployment-web-desired")
    desired["metadata"]["creationTimestamp"] = None
    desired["spec"]["minReadySeconds"] = 0
    desired["spec"]["template"]["spec"]["hostNetwork"] = False
    desired["spec"]["template"]["spec"]["nodeSelector"] = {}
    desired["spec"]["template"]["spec"]["containers"][0]["envFrom"] = []
    desired["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "EMPTY", "value": ""})
    live = load("deployment-web-live")
    live["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "EMPTY"})
    assert compare(desired, live) == []


def test_a_value_git_sets_that_the_cluster_lacks_is_missing() -> None:
    desired = load("deployment-web-desired")
    desired["spec"]["template"]["spec"]["priorityClassName"] = "high"
    [difference] = compare(desired, load("deployment-web-live"))
    assert (str(difference.path), difference.kind) == ("/spec/template/spec/priorityClassName", DifferenceKind.MISSING)


def test_status_and_server_metadata_are_never_compared() -> None:
    desired = load("deployment-web-desired")
    desired["status"] = {"replicas": 99}
    desired["metadata"]["uid"] = "something-else"
    desired["metadata"]["resourceVersion"] = "1"
    assert compare(desired, load("deployment-web-live")) == []


def test_a_service_with_ports_in_other_notations_shows_no_difference() -> None:
    desired: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "guestbook", "labels": {"moor.dev/sync": "moor-system.guestbook"}},
        "spec": {
            "selector": {"app.kubernetes.io/name": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "8080"}],
        },
    }
    assert compare(desired, load("service-web-live")) == []
    desired["spec"]["ports"][0]["targetPort"] = "http"
    [difference] = compare(desired, load("service-web-live"))
    assert str(difference.path) == "/spec/ports/port=80,protocol=TCP/targetPort"


def secret(**fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "credentials",
            "namespace": "guestbook",
            "labels": {"moor.dev/sync": "moor-system.guestbook"},
        },
        "type": "Opaque",
        **fields,
    }


def test_a_secret_declared_with_string_data_matches_its_base64_data() -> None:
    desired = secret(stringData={"username": "guestbook", "password": "s3cret"})
    assert compare(desired, load("secret-credentials-live")) == []
    desired = secret(data={"username": "Z3Vlc3Rib29r"}, stringData={"password": "s3cret"})
    assert compare(desired, load("secret-credentials-live")) == []


def test_a_changed_secret_value_is_reported_without_showing_it() -> None:
    desired = secret(stringData={"username": "guestbook", "password": "hunter2"})
    [difference] = compare(desired, load("secret-credentials-live"))
    assert str(difference.path) == "/data/password"
    assert difference.sensitive
    assert "hunter2" not in str(difference)
    assert "czNjcmV0" not in str(difference)
    assert str(difference) == "/data/password: changed (secret value not shown)"


def test_fields_applied_in_another_api_version_are_not_taken_for_removed_ones() -> None:
    live = load("deployment-web-live")
    desired = load("deployment-web-desired")
    del desired["spec"]["template"]["spec"]["tolerations"]
    live["metadata"]["managedFields"][0]["apiVersion"] = "apps/v1beta2"
    assert compare(desired, live) == []


def test_the_desired_object_is_not_modified() -> None:
    desired = {**secret(stringData={"password": "x"})}
    before = copy.deepcopy(desired)
    compare(desired, load("secret-credentials-live"))
    assert desired == before


def test_custom_resources_compare_their_unknown_lists_atomically() -> None:
    desired: dict[str, Any] = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "guestbook"},
        "spec": {"size": 3, "parts": [{"name": "a"}, {"name": "b"}]},
    }
    live = copy.deepcopy(desired)
    live["spec"]["parts"] = [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]
    assert compare(desired, live) == []
    live["spec"]["parts"].reverse()
    assert [str(d.path) for d in compare(desired, live)] == ["/spec/parts/0/name", "/spec/parts/1/name"]


def test_an_env_var_git_adds_that_someone_already_added_differently_conflicts() -> None:
    desired = load("deployment-web-desired")
    desired["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "DEBUG", "value": "0"})
    differences = by_path(compare(desired, load("deployment-web-edited")))
    debug = differences[f"{WEB}/env/name=DEBUG/value"]
    assert (debug.desired, debug.live, debug.kind) == ("0", "1", DifferenceKind.CHANGED)
