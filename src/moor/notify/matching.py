"""Which Providers hear of a notice: the Alerts whose sources, severity and exclusions let it through."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from moor.notify.notices import Notice
from moor.notify.specs import AlertSpec, Severity


@dataclass(frozen=True, order=True)
class ProviderKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"Provider {self.namespace}/{self.name}"


@dataclass(frozen=True)
class NamedAlert:
    namespace: str
    name: str
    spec: AlertSpec


def alert_matches(spec: AlertSpec, notice: Notice) -> bool:
    """An Alert sends a notice about one of its sources, severe enough, not excluded by its message."""
    if spec.suspend or not any(source.matches(notice.subject) for source in spec.sources):
        return False
    if spec.severity is Severity.ERROR and notice.severity is not Severity.ERROR:
        return False
    return not any(pattern.search(notice.message) for pattern in spec.exclusions)


def providers_for(notice: Notice, alerts: Iterable[NamedAlert], *, cross_namespace: bool = True) -> list[ProviderKey]:
    """Each Provider once, however many of its Alerts match (an Alert's Provider is in its namespace).

    Without `cross_namespace` (`moor run --no-cross-namespace-refs`), an Alert hears only of objects
    in its own namespace, so one tenant cannot read another's events.
    """
    keys = {
        ProviderKey(alert.namespace, alert.spec.provider_name)
        for alert in alerts
        if (cross_namespace or alert.namespace == notice.subject.namespace) and alert_matches(alert.spec, notice)
    }
    return sorted(keys)
