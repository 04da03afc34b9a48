"""Health results: one object's state with a sentence saying why, and the worst of many."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from moor.objects import ObjectRef

_LISTED = 5


class HealthState(enum.Enum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    FAILED = "Failed"

    @property
    def severity(self) -> int:
        """0 for Healthy, 1 for Progressing, 2 for Failed: higher is worse."""
        return _SEVERITY[self]


_SEVERITY = {HealthState.HEALTHY: 0, HealthState.PROGRESSING: 1, HealthState.FAILED: 2}


@dataclass(frozen=True)
class HealthStatus:
    """The health of one object (or of a set, from `aggregate`): a state and one sentence naming the object."""

    state: HealthState
    message: str
    ref: ObjectRef | None = None

    @property
    def healthy(self) -> bool:
        return self.state is HealthState.HEALTHY

    def __str__(self) -> str:
        return f"{self.state.value}: {self.message}"


def aggregate(statuses: Iterable[HealthStatus]) -> HealthStatus:
    """The worst state of `statuses`, with a message listing the objects that are not healthy (worst first)."""
    everything = list(statuses)
    total = len(everything)
    noun = "object" if total == 1 else "objects"
    unhealthy = sorted(
        (status for status in everything if not status.healthy),
        key=lambda status: status.state.severity,
        reverse=True,
    )
    if not unhealthy:
        if total == 0:
            return HealthStatus(HealthState.HEALTHY, "no objects to check")
        return HealthStatus(HealthState.HEALTHY, "1 object healthy" if total == 1 else f"all {total} objects healthy")
    listed = "; ".join(status.message for status in unhealthy[:_LISTED])
    if len(unhealthy) > _LISTED:
        listed += f"; and {len(unhealthy) - _LISTED} more"
    message = f"{len(unhealthy)} of {total} {noun} not healthy: {listed}"
    return HealthStatus(unhealthy[0].state, message)


def failures(statuses: Iterable[HealthStatus]) -> HealthStatus:
    """Failed, naming the objects of `statuses` that failed and counting those still progressing; the
    health of a set whose wait stopped early (as Flux's WaitForSet with FailFast does)."""
    everything = list(statuses)
    failed = [status for status in everything if status.state is HealthState.FAILED]
    waiting = sum(1 for status in everything if status.state is HealthState.PROGRESSING)
    noun = "object" if len(everything) == 1 else "objects"
    listed = "; ".join(status.message for status in failed[:_LISTED])
    if len(failed) > _LISTED:
        listed += f"; and {len(failed) - _LISTED} more"
    message = f"{len(failed)} of {len(everything)} {noun} failed: {listed}"
    if waiting:
        message += f" ({waiting} more not healthy yet)"
    return HealthStatus(HealthState.FAILED, message)
