"""Health rules for objects that are ready once the API or a controller accepts them: PersistentVolumeClaim,
Service, Ingress, Namespace, CustomResourceDefinition and APIService."""

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


def _load_balancer_addresses(obj: Mapping[str, Any]) -> list[str]:
    ingress = ((status_of(obj).get("loadBalancer") or {}).get("ingress")) or []
    return [str(item.get("ip") or item.get("hostname")) for item in ingress if isinstance(item, Mapping)]


def service(obj: Mapping[str, Any]) -> Verdict:
    kind = spec_of(obj).get("type") or "ClusterIP"
    if kind != "LoadBalancer":
        return HEALTHY, f"{kind} service"
    addresses = _load_balancer_addresses(obj)
    if not addresses:
        return PROGRESSING, "waiting for a load balancer address"
    return HEALTHY, f"load balancer at {', '.join(addresses)}"


def ingress(obj: Mapping[str, Any]) -> Verdict:
    """Healthy once it exists, its published address named when there is one.

    Not waited for (unlike Argo CD, like Flux): many ingress controllers never publish an address, and a
    cluster without one (a local or test cluster) would fail every Sync holding an Ingress.
    """
    addresses = _load_balancer_addresses(obj)
    if not addresses:
        return HEALTHY, "no address published by an ingress controller (not waited for)"
    return HEALTHY, f"published at {', '.join(addresses)}"


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


def api_service(obj: Mapping[str, Any]) -> Verdict:
    """Healthy when the aggregator reports it Available; until then Progressing, since the Service and Pods
    behind it usually start in the same Sync (the timeout still fails one that never becomes available)."""
    available = condition(obj, "Available")
    if available is None or available.get("status") == "Unknown":
        return PROGRESSING, "waiting for the API aggregator to check it"
    if available.get("status") == "True":
        return HEALTHY, f"available ({explain(available, 'no reason given')})"
    return PROGRESSING, f"not available yet ({explain(available, 'no reason given')})"
