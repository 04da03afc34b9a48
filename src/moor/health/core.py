"""Health rules for objects that are ready once the API or a controller accepts them: PersistentVolumeClaim,
Service, Namespace and CustomResourceDefinition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moor.health.conditions import Verdict, condition, explain, is_true, spec_of, status_of
from moor.health.status import HealthState

HEALTHY, PROGRESSING, FAILED = HealthState.HEALTHY, HealthState.PROGRESSING, HealthState.FAILED


def persistent_volume_claim(obj: Mapping[str, Any]) -> Verdict:
    phase = status_of(obj).get("phase")
    if phase == "Bound":
        volume = spec_of(obj).get("volumeName")
        return HEALTHY, f"bound to volume {volume}" if volume else "bound"
    if phase == "Lost":
        return FAILED, "lost its volume"
    return PROGRESSING, "waiting for a volume to bind"


def service(obj: Mapping[str, Any]) -> Verdict:
    kind = spec_of(obj).get("type") or "ClusterIP"
    if kind != "LoadBalancer":
        return HEALTHY, f"{kind} service"
    ingress = ((status_of(obj).get("loadBalancer") or {}).get("ingress")) or []
    addresses = [str(item.get("ip") or item.get("hostname")) for item in ingress if isinstance(item, Mapping)]
    if not addresses:
        return PROGRESSING, "waiting for a load balancer address"
    return HEALTHY, f"load balancer at {', '.join(addresses)}"


def namespace(obj: Mapping[str, Any]) -> Verdict:
    if status_of(obj).get("phase") == "Terminating":
        return PROGRESSING, "terminating"
    return HEALTHY, "active"


def custom_resource_definition(obj: Mapping[str, Any]) -> Verdict:
    names = condition(obj, "NamesAccepted")
    if names is not None and names.get("status") == "False":
        return FAILED, f"names not accepted ({explain(names, 'no reason given')})"
    if is_true(obj, "NonStructuralSchema"):
        return FAILED, f"schema is not structural ({explain(condition(obj, 'NonStructuralSchema'))})"
    if is_true(obj, "Established"):
        return HEALTHY, "established"
    return PROGRESSING, "waiting to be established"
