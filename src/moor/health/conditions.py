"""Reading `status.conditions` and generations, shared by the per-kind rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moor.health.status import HealthState

Verdict = tuple[HealthState, str]
"""A rule's answer: the state and what is wrong (or right), without the object's name."""

# Conditions that, when True, say a not-yet-ready object is still working towards Ready.
_IN_PROGRESS = ("Reconciling", "Progressing", "Issuing")
# Words in a Ready=False reason that say the controller failed ("ReconciliationFailed", "ReconcileError",
# "InvalidSpec"), rather than that it is still at work ("Creating", "Pending", "DependencyNotReady").
_FAILURE_WORDS = ("Fail", "Err", "Invalid")


def spec_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def status_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def number(value: Any, default: int = 0) -> int:
    """An integer field that may be absent (the API omits zero counts)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The condition of type `kind` in status.conditions, None when there is none."""
    for item in status_of(obj).get("conditions") or []:
        if isinstance(item, Mapping) and item.get("type") == kind:
            return item
    return None


def is_true(obj: Mapping[str, Any], kind: str) -> bool:
    found = condition(obj, kind)
    return found is not None and found.get("status") == "True"


def is_false(obj: Mapping[str, Any], kind: str) -> bool:
    found = condition(obj, kind)
    return found is not None and found.get("status") == "False"


def explain(found: Mapping[str, Any] | None, default: str = "") -> str:
    """`reason: message` of a condition, whichever parts it has."""
    if found is None:
        return default
    parts = [str(found[key]).strip() for key in ("reason", "message") if found.get(key)]
    return ": ".join(part for part in parts if part) or default


def unobserved_generation(obj: Mapping[str, Any], *, required: bool = False) -> int | None:
    """The generation the object's controller has not yet observed, None when it is up to date.

    With `required`, a missing status.observedGeneration counts as not observed (workload controllers
    always set it); otherwise only a present, older one does.
    """
    generation = number((obj.get("metadata") or {}).get("generation"))
    observed = status_of(obj).get("observedGeneration")
    if observed is None:
        return generation if required and generation else None
    return generation if generation and number(observed) < generation else None


def ready_condition(obj: Mapping[str, Any]) -> Verdict | None:
    """The verdict of a `Ready` condition (the convention of most controllers), None when there is none.

    Stalled=True is Failed; Ready=True is Healthy once the current generation is observed; Ready=False
    is Failed when its reason says so and neither Reconciling, Progressing nor Issuing is True, Progressing
    otherwise (a failure ends the health wait at once, so only one the controller reports counts);
    Unknown is Progressing.
    """
    stalled = condition(obj, "Stalled")
    if stalled is not None and stalled.get("status") == "True":
        return HealthState.FAILED, f"stalled: {explain(stalled, 'no reason given')}"
    ready = condition(obj, "Ready")
    if ready is None:
        return None
    generation = unobserved_generation(obj)
    ready_observed = ready.get("observedGeneration")
    current = number((obj.get("metadata") or {}).get("generation"))
    if generation is None and ready_observed is not None and current and number(ready_observed) < current:
        generation = current
    if generation is not None:
        return HealthState.PROGRESSING, f"waiting for generation {generation} to be observed"
    status = ready.get("status")
    if status == "True":
        return HealthState.HEALTHY, explain(ready, "ready")
    if status == "False":
        reason = str(ready.get("reason") or "")
        if any(word in reason for word in _FAILURE_WORDS) and not any(is_true(obj, kind) for kind in _IN_PROGRESS):
            return HealthState.FAILED, f"not ready: {explain(ready, 'no reason given')}"
        return HealthState.PROGRESSING, f"not ready yet: {explain(ready, 'no reason given')}"
    return HealthState.PROGRESSING, f"readiness unknown: {explain(ready, 'no reason given')}"
