"""The order objects are applied in, and its reverse, the order they are deleted in.

Render returns objects in this order and pruning deletes in the reverse, so custom resources go
before their CRDs and namespaced objects before their Namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from moor.objects import ObjectRef, split_api_version

FOUNDATIONS: tuple[tuple[str, str], ...] = (
    # What everything else lives in or is typed by.
    ("", "Namespace"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    # Cluster-wide configuration.
    ("scheduling.k8s.io", "PriorityClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("storage.k8s.io", "StorageClass"),
    ("", "PersistentVolume"),
    ("networking.k8s.io", "IngressClass"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    # A namespace's guard rails, before anything runs in it.
    ("", "ResourceQuota"),
    ("", "LimitRange"),
    ("networking.k8s.io", "NetworkPolicy"),
    # Identity and configuration that workloads use.
    ("", "ServiceAccount"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("", "Secret"),
    ("", "ConfigMap"),
    ("", "PersistentVolumeClaim"),
    ("", "Service"),
)
"""(group, kind) applied first, in this order; then every kind not listed here (custom resources above all)."""

WORKLOADS: tuple[tuple[str, str], ...] = (
    ("", "Pod"),
    ("", "ReplicationController"),
    ("apps", "ReplicaSet"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    # What acts on running workloads.
    ("policy", "PodDisruptionBudget"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("networking.k8s.io", "Ingress"),
)
"""Workloads come after the unlisted kinds: the Pods they start find everything they use in place, custom
resources included (a certificate or an external secret that makes a Secret they mount). Creating them also
sets the cluster's controllers to work, so the rest of the set is written before that load begins."""

INTERCEPTORS: tuple[tuple[str, str], ...] = (
    ("apiregistration.k8s.io", "APIService"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
)
"""Extensions that intercept the API go last, once the workloads serving them exist (and are deleted first)."""

UNLISTED = len(FOUNDATIONS)
_RANKS = {
    **{group_kind: rank for rank, group_kind in enumerate(FOUNDATIONS)},
    **{group_kind: UNLISTED + 1 + rank for rank, group_kind in enumerate((*WORKLOADS, *INTERCEPTORS))},
}

Item = TypeVar("Item", bound=ObjectRef | Mapping[str, Any])


def apply_rank(group: str, kind: str) -> int:
    """Lower ranks are applied first; unlisted kinds share one rank between FOUNDATIONS and WORKLOADS."""
    return _RANKS.get((group, kind), UNLISTED)


def in_apply_order(items: Iterable[Item]) -> list[Item]:
    """Objects (dicts or ObjectRefs) in apply order, keeping their order within a kind's rank."""
    return sorted(items, key=_rank)


def in_deletion_order(items: Iterable[Item]) -> list[Item]:
    """The exact reverse of the apply order: custom resources before their CRDs, contents before Namespaces."""
    return in_apply_order(items)[::-1]


def _rank(item: ObjectRef | Mapping[str, Any]) -> int:
    if isinstance(item, ObjectRef):
        return apply_rank(item.group, item.kind)
    group, _ = split_api_version(str(item.get("apiVersion", "")))
    return apply_rank(group, str(item.get("kind", "")))
