"""Which ServiceAccount a Sync acts as, and which references a controller for tenants refuses."""

from __future__ import annotations

from typing import Any

import pytest

from moor.cluster.access import AccessDecision, ResourceAccess, ServiceAccount
from moor.controller.sync_report import SyncFailed
from moor.controller.tenancy import ACCESS_DENIED, TenancyPolicy, denial_message
from moor.objects import ObjectRef
from moor.resources import SyncSpec

SYNC = ObjectRef("moor.dev", "v1", "Sync", "team-a", "app")


def spec(**fields: Any) -> SyncSpec:
    fields.setdefault("sourceRef", {"kind": "GitRepository", "name": "apps"})
    obj = {"apiVersion": "moor.dev/v1", "kind": "Sync", "metadata": {"name": "app", "namespace": "team-a"}}
    return SyncSpec.from_object({**obj, "spec": fields})


def test_a_sync_acts_as_its_own_service_account_else_the_default_else_the_controller() -> None:
    assert TenancyPolicy().service_account(SYNC, spec()) is None
    assert TenancyPolicy().service_account(SYNC, spec(serviceAccountName="deployer")) == ServiceAccount(
        "team-a", "deployer"
    )
    defaulted = TenancyPolicy(default_service_account="tenant")
    assert defaulted.service_account(SYNC, spec()) == ServiceAccount("team-a", "tenant")
    assert defaulted.service_account(SYNC, spec(serviceAccountName="deployer")) == ServiceAccount("team-a", "deployer")


def test_a_service_account_is_impersonated_as_its_user_and_reviewed_with_its_groups() -> None:
    account = ServiceAccount("team-a", "tenant")
    assert account.impersonation.user == "system:serviceaccount:team-a:tenant"
    assert account.groups == ("system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated")


def test_references_in_the_own_namespace_are_always_fine() -> None:
    strict = TenancyPolicy(no_cross_namespace_refs=True)
    strict.check_references(SYNC, spec(dependsOn=[{"name": "infra"}]))
    strict.check_references(SYNC, spec(sourceRef={"kind": "GitRepository", "name": "apps", "namespace": "team-a"}))


def test_references_into_other_namespaces_are_refused_only_when_told() -> None:
    crossing = spec(
        sourceRef={"kind": "GitRepository", "name": "apps", "namespace": "platform"},
        dependsOn=[{"name": "infra", "namespace": "platform"}, {"name": "db"}],
    )
    TenancyPolicy().check_references(SYNC, crossing)
    with pytest.raises(SyncFailed) as refused:
        TenancyPolicy(no_cross_namespace_refs=True).check_references(SYNC, crossing)
    assert refused.value.reason == ACCESS_DENIED
    assert refused.value.stalled
    assert str(refused.value) == (
        "spec.sourceRef names GitRepository platform/apps; spec.dependsOn names Sync platform/infra, outside the "
        "Sync's namespace team-a: this controller refuses cross-namespace references (--no-cross-namespace-refs), "
        "so nothing was applied"
    )


def test_a_denial_names_the_account_the_access_the_objects_and_the_reason() -> None:
    bindings = ResourceAccess("rbac.authorization.k8s.io", "clusterrolebindings", "")
    maps = ResourceAccess("", "configmaps", "team-b")
    needs = {
        bindings: [ObjectRef("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "", "escalate")],
        maps: [ObjectRef("", "v1", "ConfigMap", "team-b", f"m{n}") for n in range(5)],
    }
    denied = {bindings: AccessDecision(False, "a webhook said no"), maps: AccessDecision(False)}
    message = denial_message(ServiceAccount("team-a", "tenant"), denied, needs, "main@sha1:3f2a")
    assert message == (
        "revision main@sha1:3f2a: forbidden: ServiceAccount team-a/tenant may not get configmaps in namespace team-b "
        "(needed for ConfigMap team-b/m0, ConfigMap team-b/m1, ConfigMap team-b/m2 and 2 more); may not get "
        "clusterrolebindings.rbac.authorization.k8s.io at the cluster scope (needed for "
        "ClusterRoleBinding.rbac.authorization.k8s.io escalate): a webhook said no. Moor acts for this Sync only "
        "within its ServiceAccount's rights, so nothing was written"
    )
