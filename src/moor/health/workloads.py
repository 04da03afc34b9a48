"""Health rules for workloads: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and Pod.

They follow what `kubectl rollout status` waits for: the controller has seen the current generation,
every replica runs the new template, and enough of them are ready or available.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moor.health.conditions import (
    Verdict,
    condition,
    explain,
    is_true,
    number,
    spec_of,
    status_of,
    unobserved_generation,
)
from moor.health.status import HealthState

HEALTHY, PROGRESSING, FAILED = HealthState.HEALTHY, HealthState.PROGRESSING, HealthState.FAILED

# Waiting reasons that mean a container will not start without a change.
_STUCK_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
_MAX_DETAIL = 160


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _waiting_for_generation(obj: Mapping[str, Any]) -> Verdict | None:
    generation = unobserved_generation(obj, required=True)
    if generation is None:
        return None
    return PROGRESSING, f"waiting for the controller to observe generation {generation}"


def _replicas(count: int, noun: str = "replica") -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def deployment(obj: Mapping[str, Any]) -> Verdict:
    spec, status = spec_of(obj), status_of(obj)
    if spec.get("paused"):
        return HEALTHY, "rollout paused, not waiting for it"
    waiting = _waiting_for_generation(obj)
    if waiting:
        return waiting
    progressing = condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return FAILED, f"rollout exceeded its progress deadline ({_short(explain(progressing))})"
    failure = condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return FAILED, f"cannot create pods ({_short(explain(failure))})"
    wanted = number(spec.get("replicas"), 1)
    updated = number(status.get("updatedReplicas"))
    total = number(status.get("replicas"))
    available = number(status.get("availableReplicas"))
    if updated < wanted:
        return PROGRESSING, f"{updated} of {_replicas(wanted)} updated"
    if total > updated:
        return PROGRESSING, f"{_replicas(total - updated, 'old replica')} pending termination"
    if available < wanted:
        return PROGRESSING, f"{available} of {_replicas(wanted)} available"
    if wanted == 0:
        return HEALTHY, "scaled to zero"
    return HEALTHY, f"{available} of {_replicas(wanted)} available"


def stateful_set(obj: Mapping[str, Any]) -> Verdict:
    spec, status = spec_of(obj), status_of(obj)
    waiting = _waiting_for_generation(obj)
    if waiting:
        return waiting
    wanted = number(spec.get("replicas"), 1)
    ready = number(status.get("readyReplicas"))
    updated = number(status.get("updatedReplicas"))
    if ready < wanted:
        return PROGRESSING, f"{ready} of {_replicas(wanted)} ready"
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return HEALTHY, f"{ready} of {_replicas(wanted)} ready (updates on delete)"
    partition = number((strategy.get("rollingUpdate") or {}).get("partition"))
    if partition > 0:
        expected = max(wanted - partition, 0)
        if updated < expected:
            return PROGRESSING, (
                f"partitioned rollout: {updated} of {_replicas(expected)} from ordinal {partition} updated"
            )
        return HEALTHY, f"{ready} of {_replicas(wanted)} ready, rollout partitioned at ordinal {partition}"
    current, target = status.get("currentRevision"), status.get("updateRevision")
    if target and current != target:
        return PROGRESSING, f"rolling update to {target}: {updated} of {_replicas(wanted)} updated"
    return HEALTHY, f"{ready} of {_replicas(wanted)} ready"


def daemon_set(obj: Mapping[str, Any]) -> Verdict:
    spec, status = spec_of(obj), status_of(obj)
    waiting = _waiting_for_generation(obj)
    if waiting:
        return waiting
    scheduled = number(status.get("desiredNumberScheduled"))
    updated = number(status.get("updatedNumberScheduled"))
    available = number(status.get("numberAvailable"))
    on_delete = (spec.get("updateStrategy") or {}).get("type") == "OnDelete"
    if not on_delete and updated < scheduled:
        return PROGRESSING, f"{updated} of {scheduled} pods updated"
    if available < scheduled:
        return PROGRESSING, f"{available} of {scheduled} pods available"
    return HEALTHY, f"{available} of {scheduled} pods available"


def replica_set(obj: Mapping[str, Any]) -> Verdict:
    spec, status = spec_of(obj), status_of(obj)
    waiting = _waiting_for_generation(obj)
    if waiting:
        return waiting
    failure = condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return FAILED, f"cannot create pods ({_short(explain(failure))})"
    wanted = number(spec.get("replicas"), 1)
    available = number(status.get("availableReplicas"))
    if available < wanted:
        return PROGRESSING, f"{available} of {_replicas(wanted)} available"
    return HEALTHY, f"{available} of {_replicas(wanted)} available"


def job(obj: Mapping[str, Any]) -> Verdict:
    spec, status = spec_of(obj), status_of(obj)
    for kind in ("Failed", "FailureTarget"):
        failed = condition(obj, kind)
        if failed is not None and failed.get("status") == "True":
            return FAILED, f"failed ({_short(explain(failed, 'no reason given'))})"
    if is_true(obj, "Complete") or is_true(obj, "SuccessCriteriaMet"):
        return HEALTHY, "completed"
    if spec.get("suspend") or is_true(obj, "Suspended"):
        return HEALTHY, "suspended, not waiting for it"
    active = number(status.get("active"))
    succeeded = number(status.get("succeeded"))
    completions = spec.get("completions")
    done = f"{succeeded} of {number(completions)}" if completions is not None else str(succeeded)
    return PROGRESSING, f"running: {active} active, {done} succeeded"


def _container_statuses(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for key in ("initContainerStatuses", "containerStatuses"):
        found.extend(item for item in status.get(key) or [] if isinstance(item, Mapping))
    return found


def _stuck_container(statuses: list[Mapping[str, Any]]) -> str | None:
    for item in statuses:
        waiting = (item.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        if reason in _STUCK_WAITING:
            message = str(waiting.get("message") or "").strip()
            detail = f"{reason} ({_short(message)})" if message else reason
            return f"container {item.get('name', '?')} is in {detail}"
    return None


def _failed_container(statuses: list[Mapping[str, Any]]) -> str | None:
    for item in statuses:
        terminated = (item.get("state") or {}).get("terminated") or {}
        code = number(terminated.get("exitCode"))
        if terminated and code != 0:
            reason = terminated.get("reason") or "Error"
            return f"container {item.get('name', '?')} exited with code {code} ({reason})"
    return None


def pod(obj: Mapping[str, Any]) -> Verdict:
    spec, status = spec_of(obj), status_of(obj)
    phase = status.get("phase")
    containers = _container_statuses(status)
    if phase == "Succeeded":
        return HEALTHY, "completed"
    if phase == "Failed":
        why = status.get("message") or status.get("reason") or _failed_container(containers)
        return FAILED, f"failed ({_short(str(why))})" if why else "failed"
    stuck = _stuck_container(containers)
    if stuck:
        return FAILED, stuck
    if spec.get("restartPolicy") == "Never":
        failed = _failed_container(containers)
        if failed:
            return FAILED, failed
    if phase == "Running":
        if is_true(obj, "Ready"):
            return HEALTHY, "running and ready"
        ready = condition(obj, "Ready")
        return PROGRESSING, f"running, not ready ({_short(explain(ready, 'waiting for readiness'))})"
    scheduled = condition(obj, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False":
        return PROGRESSING, f"not scheduled yet ({_short(explain(scheduled))})"
    return PROGRESSING, f"{str(phase).lower() if phase else 'waiting to start'}"
