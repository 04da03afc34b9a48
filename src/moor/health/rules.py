"""One table of per-kind health rules, and the entry point that applies them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from moor.health import autoscaling, core, workloads
from moor.health.conditions import Verdict, ready_condition
from moor.health.status import HealthState, HealthStatus
from moor.objects import ObjectRef

Rule = Callable[[Mapping[str, Any]], Verdict]

RULES: Mapping[tuple[str, str], Rule] = {
    ("apps", "Deployment"): workloads.deployment,
    ("apps", "StatefulSet"): workloads.stateful_set,
    ("apps", "DaemonSet"): workloads.daemon_set,
    ("apps", "ReplicaSet"): workloads.replica_set,
    ("batch", "Job"): workloads.job,
    ("", "Pod"): workloads.pod,
    ("", "PersistentVolumeClaim"): core.persistent_volume_claim,
    ("", "Service"): core.service,
    ("", "Namespace"): core.namespace,
    ("networking.k8s.io", "Ingress"): core.ingress,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): core.custom_resource_definition,
    ("apiregistration.k8s.io", "APIService"): core.api_service,
    ("autoscaling", "HorizontalPodAutoscaler"): autoscaling.horizontal_pod_autoscaler,
}
"""(API group, kind) -> rule. Other kinds are judged by their Ready condition, or healthy when they exist."""


def describe(ref: ObjectRef) -> str:
    """How messages name an object: `Deployment guestbook/web`, `Namespace guestbook`."""
    return f"{ref.kind} {ref.namespace}/{ref.name}" if ref.namespace else f"{ref.kind} {ref.name}"


def assess_health(obj: Mapping[str, Any]) -> HealthStatus:
    """The health of one live object, with one sentence naming it and what is wrong (or right)."""
    ref = ObjectRef.of(obj)
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        verdict: Verdict = (HealthState.PROGRESSING, "being deleted")
    else:
        rule = RULES.get((ref.group, ref.kind))
        verdict = rule(obj) if rule else ready_condition(obj) or (HealthState.HEALTHY, "exists")
    state, detail = verdict
    return HealthStatus(state, f"{describe(ref)}: {detail}", ref)
