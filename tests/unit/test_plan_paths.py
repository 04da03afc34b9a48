"""Field paths and managedFields: how Moor names a field and learns who owns it."""

from moor.plan import APPLY, ROOT, FieldPath, ListKey, ManagedFields, SetItem, parse_fields_v1
from tests.unit.fixtures import load

CONTAINERS = ROOT / "spec" / "template" / "spec" / "containers"
WEB = CONTAINERS / ListKey.of([("name", "web")])


def test_paths_print_like_json_pointers_with_merge_keys_for_list_items() -> None:
    assert str(ROOT / "spec" / "replicas") == "/spec/replicas"
    assert str(WEB / "image") == "/spec/template/spec/containers/name=web/image"
    port = WEB / "ports" / ListKey.of([("protocol", "TCP"), ("containerPort", 8080)])
    assert str(port) == "/spec/template/spec/containers/name=web/ports/containerPort=8080,protocol=TCP"
    assert str(ROOT / "spec" / "tolerations" / 0 / "key") == "/spec/tolerations/0/key"


def test_slashes_and_tildes_are_escaped_as_in_json_pointer() -> None:
    assert str(ROOT / "metadata" / "annotations" / "moor.dev/prune") == "/metadata/annotations/moor.dev~1prune"
    mount = WEB / "volumeMounts" / ListKey.of([("mountPath", "/etc/guestbook")])
    assert str(mount).endswith("/volumeMounts/mountPath=~1etc~1guestbook")
    assert str(ROOT / "metadata" / "finalizers" / SetItem.of("example.com/x")) == (
        '/metadata/finalizers/["example.com~1x"]'
    )


def test_is_within_matches_the_path_itself_and_its_descendants_only() -> None:
    replicas = ROOT / "spec" / "replicas"
    assert replicas.is_within("/spec/replicas")
    assert replicas.is_within("/spec")
    assert replicas.is_within(ROOT / "spec")
    assert not replicas.is_within("/spec/rep")
    assert not (ROOT / "spec" / "replicasExtra").is_within("/spec/replicas")
    assert (WEB / "image").is_within("/spec/template/spec/containers/name=web")


def test_fields_v1_is_read_into_leaves_and_dot_marked_nodes() -> None:
    fields = parse_fields_v1(
        {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}},
                "f:list": {"i:2": {}},
            },
            "f:metadata2": {"f:finalizers": {'v:"example.com/x"': {}}},
        }
    )
    printed = sorted(str(path) for path in fields)
    assert printed == [
        "/metadata/labels",
        "/metadata/labels/app",
        '/metadata2/finalizers/["example.com~1x"]',
        "/spec/list/2",
        "/spec/ports/port=80,protocol=TCP",
        "/spec/ports/port=80,protocol=TCP/port",
        "/spec/replicas",
    ]


def test_the_field_set_of_moors_apply_is_found_by_manager_and_operation() -> None:
    fields = ManagedFields.of(load("deployment-web-live")).fields_of("moor", APPLY)
    assert ROOT / "spec" / "replicas" in fields
    assert WEB / "image" in fields
    assert WEB / "env" / ListKey.of([("name", "LOG_LEVEL")]) / "value" in fields
    assert ROOT / "status" / "replicas" not in fields
    assert ManagedFields.of(load("deployment-web-live")).fields_of("kubectl-edit", APPLY) == frozenset()


def test_owners_of_a_field_name_the_manager_operation_and_time() -> None:
    managed = ManagedFields.of(load("deployment-web-edited"))
    owners = managed.owners_of(ROOT / "spec" / "replicas")
    assert [(o.manager, o.operation, o.time) for o in owners] == [("kubectl-edit", "Update", "2026-11-03T16:02:44Z")]
    assert str(owners[0]) == "kubectl-edit (Update) at 2026-11-03T16:02:44Z"


def test_a_field_inside_an_atomic_field_belongs_to_the_owner_of_the_atomic_field() -> None:
    managed = ManagedFields.of(load("deployment-web-live"))
    # moor applied `selector` as a whole (atomic): it owns every field inside it.
    owners = managed.owners_of(ROOT / "spec" / "selector" / "matchLabels" / "app.kubernetes.io/name")
    assert [owner.manager for owner in owners] == ["moor"]
    # `.` on annotations does not make kube-controller-manager own every annotation.
    owners = managed.owners_of(ROOT / "metadata" / "annotations" / "example.com/owner")
    assert [owner.manager for owner in owners] == ["moor"]


def test_owners_of_an_item_include_managers_of_its_parts_newest_first() -> None:
    managed = ManagedFields.of(load("deployment-web-edited"))
    owners = managed.owners_of(WEB / "env" / ListKey.of([("name", "LOG_LEVEL")]))
    assert [owner.manager for owner in owners] == ["kubectl-edit", "moor"]


def test_unknown_encodings_are_kept_rather_than_dropped() -> None:
    assert {str(p) for p in parse_fields_v1({"f:spec": {"x:odd": {}}})} == {"/spec/x:odd"}
    assert FieldPath.of("a", 1).parent == FieldPath.of("a")
