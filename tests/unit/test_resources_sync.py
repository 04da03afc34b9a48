from datetime import timedelta
from typing import Any

import pytest

from moor.health.cel import assess_health_by
from moor.resources import (
    ApprovalMode,
    DependencyRef,
    DriftIgnoreRule,
    DriftMode,
    DriftSpec,
    HelmSpec,
    SourceRef,
    SpecError,
    SyncSpec,
)
from moor.resources.sync import ChartRef, ValuesKind, ValuesReference


def sync(**spec: Any) -> dict[str, Any]:
    spec.setdefault("sourceRef", {"name": "apps"})
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"name": "guestbook", "namespace": "moor-system"},
        "spec": spec,
    }


def test_the_api_example_reads_completely() -> None:
    spec = SyncSpec.from_object(
        sync(
            sourceRef={"kind": "GitRepository", "name": "apps", "namespace": "moor-system"},
            path="./guestbook",
            helm={"valuesFiles": ["values-production.yaml"], "values": {"a": {"b": 1}}, "releaseName": "guestbook"},
            targetNamespace="guestbook",
            interval="5m",
            retryInterval="30s",
            timeout="3m",
            prune=True,
            allowEmpty=False,
            wait=True,
            force=False,
            dependsOn=[{"name": "infra"}],
            serviceAccountName="tenant-a",
            drift={"mode": "correct", "ignore": [{"kind": "Deployment", "name": "web", "paths": ["/spec/replicas"]}]},
            rollback={"onFailure": True},
            approval={"mode": "auto"},
            suspend=False,
        )
    )
    assert spec == SyncSpec(
        source_ref=SourceRef(kind="GitRepository", name="apps", namespace="moor-system"),
        path="guestbook",
        helm=HelmSpec(values_files=("values-production.yaml",), values={"a": {"b": 1}}, release_name="guestbook"),
        target_namespace="guestbook",
        interval=timedelta(minutes=5),
        retry_interval=timedelta(seconds=30),
        timeout=timedelta(minutes=3),
        prune=True,
        allow_empty=False,
        wait=True,
        force=False,
        depends_on=(DependencyRef(namespace="moor-system", name="infra"),),
        service_account_name="tenant-a",
        drift=DriftSpec(
            mode=DriftMode.CORRECT,
            ignore=(DriftIgnoreRule(kind="Deployment", name="web", paths=("/spec/replicas",)),),
        ),
        rollback_on_failure=True,
        approval=ApprovalMode.AUTO,
        suspend=False,
    )


def test_defaults_match_the_crd() -> None:
    spec = SyncSpec.from_object(sync())
    assert spec.source_ref == SourceRef(kind="GitRepository", name="apps", namespace="moor-system")
    assert spec.path == "."
    assert spec.helm is None
    assert spec.target_namespace is None
    assert (spec.interval, spec.retry_interval, spec.timeout) == (
        timedelta(minutes=5),
        timedelta(seconds=30),
        timedelta(minutes=3),
    )
    assert (spec.prune, spec.allow_empty, spec.wait, spec.force) == (True, False, True, False)
    assert spec.depends_on == ()
    assert spec.service_account_name is None
    assert spec.drift == DriftSpec(mode=DriftMode.CORRECT, ignore=())
    assert spec.rollback_on_failure is False
    assert spec.approval is ApprovalMode.AUTO
    assert spec.suspend is False


def test_references_default_to_the_syncs_namespace() -> None:
    spec = SyncSpec.from_object(
        sync(sourceRef={"name": "apps"}, dependsOn=[{"name": "infra"}, {"name": "db", "namespace": "data"}])
    )
    assert spec.source_ref.namespace == "moor-system"
    assert spec.depends_on == (DependencyRef("moor-system", "infra"), DependencyRef("data", "db"))
    assert [str(dependency) for dependency in spec.depends_on] == ["moor-system/infra", "data/db"]


@pytest.mark.parametrize(
    ("path", "normalised"),
    [
        ("./", "."),
        (".", "."),
        ("./guestbook", "guestbook"),
        ("guestbook/overlays/dev/", "guestbook/overlays/dev"),
        ("apps//web", "apps/web"),
        ("./a/./b", "a/b"),
    ],
)
def test_paths_are_normalised_relative_to_the_root(path: str, normalised: str) -> None:
    assert SyncSpec.from_object(sync(path=path)).path == normalised


@pytest.mark.parametrize("path", ["../secrets", "apps/../../etc", "..", "apps/.."])
def test_paths_never_leave_the_repository(path: str) -> None:
    with pytest.raises(SpecError, match=r"Sync moor-system/guestbook: spec.path must not contain '..' segments"):
        SyncSpec.from_object(sync(path=path))


@pytest.mark.parametrize("path", ["/etc", "/", "//srv/apps"])
def test_absolute_paths_are_refused_as_such(path: str) -> None:
    with pytest.raises(SpecError) as raised:
        SyncSpec.from_object(sync(path=path))
    assert str(raised.value) == (
        f"Sync moor-system/guestbook: spec.path must be relative to the repository root: "
        f"absolute paths are not allowed, not {path!r}"
    )


def test_absolute_values_files_are_refused_as_such() -> None:
    with pytest.raises(SpecError) as raised:
        SyncSpec.from_object(sync(helm={"valuesFiles": ["values.yaml", "/etc/passwd"]}))
    assert "spec.helm.valuesFiles must be relative to the chart: absolute paths are not allowed, not '/etc/passwd'" in (
        str(raised.value)
    )


def test_dotted_names_are_not_parent_segments() -> None:
    assert SyncSpec.from_object(sync(path="./apps/..hidden/v1..2")).path == "apps/..hidden/v1..2"


def test_values_files_never_leave_the_chart() -> None:
    with pytest.raises(SpecError, match=r"spec.helm.valuesFiles must not contain '..' segments"):
        SyncSpec.from_object(sync(helm={"valuesFiles": ["../other/values.yaml"]}))


def test_helm_values_are_copied_not_shared() -> None:
    values = {"replicas": 2, "image": {"tag": "1.0"}}
    spec = SyncSpec.from_object(sync(helm={"values": values}))
    values["image"]["tag"] = "2.0"
    assert spec.helm is not None
    assert spec.helm.values == {"replicas": 2, "image": {"tag": "1.0"}}
    assert spec.helm.release_name is None


def test_a_source_of_another_kind_is_refused() -> None:
    refused = r"spec.sourceRef.kind must be one of GitRepository, OCIRepository, HelmRepository, not 'Bucket'"
    with pytest.raises(SpecError, match=refused):
        SyncSpec.from_object(sync(sourceRef={"kind": "Bucket", "name": "apps"}))


def test_the_source_is_required() -> None:
    obj = sync()
    del obj["spec"]["sourceRef"]
    with pytest.raises(SpecError, match=r"Sync moor-system/guestbook: spec.sourceRef is required"):
        SyncSpec.from_object(obj)


def test_an_unknown_drift_mode_lists_the_choices() -> None:
    with pytest.raises(SpecError) as caught:
        SyncSpec.from_object(sync(drift={"mode": "fix"}))
    assert str(caught.value) == (
        "Sync moor-system/guestbook: spec.drift.mode must be one of correct, alert, ignore, not 'fix'"
    )


def test_approval_modes() -> None:
    assert SyncSpec.from_object(sync(approval={"mode": "manual"})).approval is ApprovalMode.MANUAL
    with pytest.raises(SpecError, match=r"spec.approval.mode must be one of auto, manual"):
        SyncSpec.from_object(sync(approval={"mode": "Manual"}))


@pytest.mark.parametrize(("field", "value"), [("interval", "5"), ("retryInterval", "soon"), ("timeout", "3 m")])
def test_bad_durations_name_their_field(field: str, value: str) -> None:
    with pytest.raises(SpecError, match=rf"Sync moor-system/guestbook: spec.{field} is invalid"):
        SyncSpec.from_object(sync(**{field: value}))


def test_a_drift_ignore_rule_needs_json_pointers() -> None:
    with pytest.raises(SpecError, match=r"spec.drift.ignore\[0\].paths is required"):
        SyncSpec.from_object(sync(drift={"ignore": [{"kind": "Deployment"}]}))
    with pytest.raises(SpecError, match=r"spec.drift.ignore\[1\].paths must hold JSON pointers"):
        SyncSpec.from_object(
            sync(drift={"ignore": [{"kind": "Deployment", "paths": ["/a"]}, {"kind": "Service", "paths": ["spec"]}]})
        )


def test_drift_ignore_rules_match_objects() -> None:
    drift = SyncSpec.from_object(
        sync(
            drift={
                "mode": "alert",
                "ignore": [
                    {"kind": "Deployment", "paths": ["/spec/replicas"]},
                    {"kind": "Deployment", "name": "web", "namespace": "guestbook", "paths": ["/metadata/annotations"]},
                    {"kind": "Service", "name": "web", "paths": ["/spec/clusterIP"]},
                ],
            }
        )
    ).drift
    assert drift.mode is DriftMode.ALERT
    assert drift.ignored_paths("Deployment", "guestbook", "web") == ("/spec/replicas", "/metadata/annotations")
    assert drift.ignored_paths("Deployment", "other", "web") == ("/spec/replicas",)
    assert drift.ignored_paths("ConfigMap", "guestbook", "web") == ()


def test_a_dependency_needs_a_name() -> None:
    with pytest.raises(SpecError, match=r"spec.dependsOn\[0\].name is required"):
        SyncSpec.from_object(sync(dependsOn=[{"namespace": "infra"}]))


def test_a_target_namespace_is_a_dns_label() -> None:
    with pytest.raises(SpecError, match=r"spec.targetNamespace must be a DNS-1123 label"):
        SyncSpec.from_object(sync(targetNamespace="guest.book"))


def test_a_list_where_an_object_belongs_is_reported() -> None:
    with pytest.raises(SpecError, match=r"Sync moor-system/guestbook: spec.drift must be an object, not a list"):
        SyncSpec.from_object(sync(drift=["correct"]))


def test_specs_are_hashable_values() -> None:
    spec = SyncSpec.from_object(sync(dependsOn=[{"name": "infra"}]))
    assert {spec.depends_on[0]: True}
    assert spec == SyncSpec.from_object(sync(dependsOn=[{"name": "infra"}]))


def chart_sync(**spec: Any) -> dict[str, Any]:
    return sync(sourceRef={"kind": "HelmRepository", "name": "charts"}, **spec)


def test_a_helm_repository_source_reads_its_chart() -> None:
    spec = SyncSpec.from_object(chart_sync(chart={"name": "podinfo", "version": "^6.5"}))
    assert spec.source_ref == SourceRef(kind="HelmRepository", name="charts", namespace="moor-system")
    assert spec.chart == ChartRef(name="podinfo", version="^6.5")
    assert spec.path == "."  # the chart itself


def test_a_chart_without_a_version_follows_the_newest() -> None:
    assert SyncSpec.from_object(chart_sync(chart={"name": "podinfo"})).chart == ChartRef("podinfo", "*")


def test_a_helm_repository_source_needs_a_chart() -> None:
    with pytest.raises(SpecError, match=r"spec.chart is required with a HelmRepository source"):
        SyncSpec.from_object(chart_sync())


@pytest.mark.parametrize("kind", ["GitRepository", "OCIRepository"])
def test_a_chart_is_refused_with_any_other_source(kind: str) -> None:
    with pytest.raises(SpecError, match=rf"spec.chart is only for a HelmRepository source, and the source is a {kind}"):
        SyncSpec.from_object(sync(sourceRef={"kind": kind, "name": "apps"}, chart={"name": "podinfo"}))


@pytest.mark.parametrize("name", ["../etc", "a/b", "Podinfo", "-x", "a..b"])
def test_a_chart_name_must_be_a_plain_name(name: str) -> None:
    with pytest.raises(SpecError, match=r"spec.chart.name must be a chart name"):
        SyncSpec.from_object(chart_sync(chart={"name": name}))


def test_values_from_reads_in_order_with_defaults() -> None:
    spec = SyncSpec.from_object(
        sync(
            helm={
                "valuesFrom": [
                    {"kind": "ConfigMap", "name": "defaults"},
                    {"kind": "Secret", "name": "db", "key": "prod.yaml", "optional": True},
                ]
            }
        )
    )
    assert spec.helm is not None
    assert spec.helm.values_from == (
        ValuesReference(ValuesKind.CONFIG_MAP, "defaults", "values.yaml", optional=False),
        ValuesReference(ValuesKind.SECRET, "db", "prod.yaml", optional=True),
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "db"}, r"spec.helm.valuesFrom\[0\].kind is required: ConfigMap or Secret"),
        ({"kind": "Pod", "name": "db"}, r"spec.helm.valuesFrom\[0\].kind must be one of ConfigMap, Secret"),
        ({"kind": "Secret"}, r"spec.helm.valuesFrom\[0\].name is required"),
        ({"kind": "Secret", "name": "db", "key": "../x"}, r"spec.helm.valuesFrom\[0\].key has the invalid value"),
        ({"kind": "Secret", "name": "db", "optional": "yes"}, r"valuesFrom\[0\].optional must be true or false"),
    ],
)
def test_values_from_entries_are_checked(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        SyncSpec.from_object(sync(helm={"valuesFrom": [entry]}))


def test_values_from_is_bounded() -> None:
    entries = [{"kind": "ConfigMap", "name": f"v{index}"} for index in range(33)]
    with pytest.raises(SpecError, match=r"spec.helm.valuesFrom may name at most 32 objects, not 33"):
        SyncSpec.from_object(sync(helm={"valuesFrom": entries}))


def test_a_charts_crds_are_kept_unless_the_sync_opts_in_to_pruning_them() -> None:
    kept = SyncSpec.from_object(sync(sourceRef={"kind": "GitRepository", "name": "apps"}, helm={}))
    pruned = SyncSpec.from_object(sync(sourceRef={"kind": "GitRepository", "name": "apps"}, helm={"pruneCRDs": True}))

    assert kept.helm is not None and not kept.helm.prune_crds
    assert pruned.helm is not None and pruned.helm.prune_crds


CERTIFICATE_CHECK = {
    "apiVersion": "example.com/v1",
    "kind": "Certificate",
    "current": "status.?conditions.orValue([]).exists(c, c.type == 'Ready' && c.status == 'True')",
}


def test_own_health_checks_come_before_the_library() -> None:
    checks = SyncSpec.from_object(sync(healthChecks=[CERTIFICATE_CHECK])).health_checks
    certificate = {"apiVersion": "example.com/v1", "kind": "Certificate", "metadata": {"name": "tls"}}

    assert "not current yet" in assess_health_by(certificate, checks).message
    assert checks.find("cert-manager.io", "Certificate") is not None, "the library's checks stay"
    assert SyncSpec.from_object(sync()).health_checks.find("example.com", "Certificate") is None


def test_a_health_check_that_does_not_compile_names_the_entry_and_the_expression() -> None:
    broken = {**CERTIFICATE_CHECK, "failed": "status.phase =="}
    with pytest.raises(SpecError, match=r"Sync moor-system/guestbook: spec.healthChecks\[1\] .*'status.phase =='"):
        SyncSpec.from_object(sync(healthChecks=[CERTIFICATE_CHECK, broken]))


def test_git_notes_need_a_git_repository() -> None:
    assert SyncSpec.from_object(sync(history={"gitNotes": True})).git_notes
    helm = sync(
        sourceRef={"kind": "HelmRepository", "name": "charts"}, chart={"name": "web"}, history={"gitNotes": True}
    )
    with pytest.raises(SpecError, match=r"spec.history.gitNotes needs a GitRepository source"):
        SyncSpec.from_object(helm)
