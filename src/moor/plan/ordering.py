"""The order objects are applied in, and its reverse for deleting them.

Definitions come first (CRDs, Namespaces), then what others refer to (quotas, accounts, RBAC,
configuration, storage, Services), then workloads, then custom resources and kinds not listed here,
and last the objects that intercept the API (webhooks, API services). Deleting walks the same list
backwards, so custom resources go before their CRDs (while their controllers still run to finalise
them) and namespaced objects go before their Namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from moor.objects import KubeObject, ObjectRef

_RBAC = "rbac.authorization.k8s.io"
_ADMISSION = "admissionregistration.k8s.io"

_FIRST: Sequence[tuple[str, str]] = (
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("", "Namespace"),
    ("", "ResourceQuota"),
    ("", "LimitRange"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "StorageClass"),
    ("", "ServiceAccount"),
    (_RBAC, "ClusterRole"),
    (_RBAC, "Role"),
    (_RBAC, "ClusterRoleBinding"),
    (_RBAC, "RoleBinding"),
    ("", "Secret"),
    ("", "ConfigMap"),
    ("", "PersistentVolume"),
    ("", "PersistentVolumeClaim"),
    ("", "Service"),
    ("networking.k8s.io", "IngressClass"),
    ("apps", "DaemonSet"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "ReplicaSet"),
    ("", "Pod"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("policy", "PodDisruptionBudget"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "NetworkPolicy"),
)
_LAST: Sequence[tuple[str, str]] = (
    ("apiregistration.k8s.io", "APIService"),
    (_ADMISSION, "ValidatingAdmissionPolicy"),
    (_ADMISSION, "ValidatingAdmissionPolicyBinding"),
    (_ADMISSION, "MutatingWebhookConfiguration"),
    (_ADMISSION, "ValidatingWebhookConfiguration"),
)
_RANK: dict[tuple[str, str], int] = {
    **{group_kind: index for index, group_kind in enumerate(_FIRST)},
    **{group_kind: len(_FIRST) + 1 + index for index, group_kind in enumerate(_LAST)},
}
_UNLISTED = len(_FIRST)


def apply_rank(ref: ObjectRef) -> int:
    """Where a kind goes in apply order: lower first; custom resources and unlisted kinds in the middle."""
    return _RANK.get((ref.group, ref.kind), _UNLISTED)


def sort_for_apply(objects: Iterable[Mapping[str, Any]]) -> list[KubeObject]:
    """Objects in apply order; objects of the same rank keep the order they came in."""
    return sorted((dict(obj) for obj in objects), key=lambda obj: apply_rank(ObjectRef.of(obj)))


def deletion_order(refs: Iterable[ObjectRef]) -> list[ObjectRef]:
    """Refs in the order to delete them: the reverse of apply order (ties: reverse of the given order)."""
    later_first = list(refs)[::-1]
    return sorted(later_first, key=lambda ref: -apply_rank(ref))
