"""Health of a HorizontalPodAutoscaler, from its AbleToScale, ScalingActive and ScalingLimited conditions.

It follows Argo CD's rule, with one difference: metrics that cannot be read are not a failure (Argo CD:
Degraded). Right after a rollout the new Pods have no metrics for up to a minute, and a cluster without a
metrics server has none at all; the workload runs either way, so the HPA is healthy and its message says
that it is not scaling and why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from moor.health.conditions import Verdict, explain, number, spec_of, status_of, unobserved_generation
from moor.health.status import HealthState

HEALTHY, PROGRESSING, FAILED = HealthState.HEALTHY, HealthState.PROGRESSING, HealthState.FAILED

V1_CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
"""Where autoscaling/v1 returns the conditions, as JSON, since its status has no field for them."""

_FAILURES = {
    "AbleToScale": frozenset({"FailedGetScale", "FailedUpdateScale"}),
    "ScalingActive": frozenset({"InvalidSelector", "InvalidMetricSourceType"}),
}
"""Reasons, per condition type, that a change in Git (or around it) must fix: the scale target cannot be
read or written, or the autoscaler's own spec is wrong."""


def _conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found: Any = status_of(obj).get("conditions")
    if not found:
        annotation = ((obj.get("metadata") or {}).get("annotations") or {}).get(V1_CONDITIONS_ANNOTATION)
        try:
            found = json.loads(annotation) if isinstance(annotation, str) else []
        except ValueError:
            found = []
    if not isinstance(found, list):
        return {}
    return {str(item.get("type")): item for item in found if isinstance(item, Mapping)}


def _replicas(obj: Mapping[str, Any]) -> str:
    spec = spec_of(obj)
    current = number(status_of(obj).get("currentReplicas"))
    noun = "replica" if current == 1 else "replicas"
    return f"{current} {noun} (min {number(spec.get('minReplicas'), 1)}, max {number(spec.get('maxReplicas'))})"


def horizontal_pod_autoscaler(obj: Mapping[str, Any]) -> Verdict:
    generation = unobserved_generation(obj)
    if generation is not None:
        return PROGRESSING, f"waiting for generation {generation} to be observed"
    conditions = _conditions(obj)
    for kind, reasons in _FAILURES.items():
        found = conditions.get(kind)
        if found is not None and found.get("status") == "False" and found.get("reason") in reasons:
            return FAILED, f"{kind} is False ({explain(found)})"
    able, active = conditions.get("AbleToScale"), conditions.get("ScalingActive")
    if able is None or able.get("status") != "True":
        return PROGRESSING, "waiting for the autoscaler to read its target's scale"
    if active is not None and active.get("status") == "False":
        if active.get("reason") == "ScalingDisabled":
            return HEALTHY, f"scaling disabled ({explain(active)})"
        return HEALTHY, f"{_replicas(obj)}, not scaling ({explain(active, 'no reason given')})"
    limited = conditions.get("ScalingLimited")
    if limited is not None and limited.get("status") == "True":
        return HEALTHY, f"{_replicas(obj)}, limited: {explain(limited, 'no reason given')}"
    return HEALTHY, _replicas(obj)
