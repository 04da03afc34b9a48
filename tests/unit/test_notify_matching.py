"""Which Providers hear of an event: the Alerts' sources, severity, exclusions and suspension."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from moor.notify.matching import NamedAlert, ProviderKey, alert_matches, providers_for
from moor.notify.notices import Happening, Notice
from moor.notify.specs import AlertSpec, EventSource, Severity
from moor.objects import ObjectRef
from moor.record.events import NORMAL, WARNING, RecordedEvent

AT = datetime(2024, 6, 1, tzinfo=UTC)


def event(
    kind: str = "Sync", name: str = "web", type_: str = NORMAL, reason: str = "Applied", message: str = "ok"
) -> Notice:
    subject = ObjectRef("moor.dev", "v1", kind, "shop", name)
    return Notice.of(RecordedEvent(subject, type_, reason, message, AT))


def spec(*sources: EventSource, **fields: object) -> AlertSpec:
    return AlertSpec(provider_name="p", sources=sources or (EventSource("Sync", "*", "shop"),), **fields)  # type: ignore[arg-type]


def test_sources_by_kind_name_and_namespace() -> None:
    web = spec(EventSource("Sync", "web", "shop"))
    assert alert_matches(web, event())
    assert not alert_matches(web, event(name="api"))
    assert not alert_matches(web, event(kind="GitRepository"))
    assert not alert_matches(spec(EventSource("Sync", "web", "other")), event())
    assert alert_matches(spec(EventSource("Sync", "*", "shop")), event(name="anything"))


def test_error_severity_lets_only_warnings_through() -> None:
    errors = spec(severity=Severity.ERROR)
    assert not alert_matches(errors, event())
    assert alert_matches(errors, event(type_=WARNING, reason="HealthCheckFailed"))
    assert alert_matches(spec(), event(type_=WARNING, reason="HealthCheckFailed")), "info takes everything"


def test_exclusions_are_regexes_on_the_message() -> None:
    quiet = spec(exclusions=(re.compile(r"waiting for dependencies"), re.compile(r"^revision .*: 0 created")))
    assert not alert_matches(
        quiet, event(type_=WARNING, reason="DependencyNotReady", message="waiting for dependencies: x")
    )
    assert not alert_matches(quiet, event(message="revision main@sha1:ab: 0 created, 1 configured"))
    assert alert_matches(quiet, event(message="revision main@sha1:ab: 2 created"))


def test_a_suspended_alert_sends_nothing() -> None:
    assert not alert_matches(spec(suspend=True), event())


def test_each_provider_once_however_many_alerts_match() -> None:
    alerts = [
        NamedAlert("shop", "all", spec()),
        NamedAlert("shop", "web", spec(EventSource("Sync", "web", "shop"))),
        NamedAlert("shop", "other", AlertSpec("chat", (EventSource("Sync", "web", "shop"),))),
        NamedAlert("shop", "git", AlertSpec("git", (EventSource("GitRepository", "*", "shop"),))),
    ]
    assert providers_for(event(), alerts) == [ProviderKey("shop", "chat"), ProviderKey("shop", "p")]


def test_without_cross_namespace_references_an_alert_hears_only_its_own_namespace() -> None:
    elsewhere = [NamedAlert("tenant-b", "spy", AlertSpec("p", (EventSource("Sync", "*", "shop"),)))]
    assert providers_for(event(), elsewhere) == [ProviderKey("tenant-b", "p")]
    assert providers_for(event(), elsewhere, cross_namespace=False) == []
    own = [NamedAlert("shop", "mine", spec())]
    assert providers_for(event(), own, cross_namespace=False) == [ProviderKey("shop", "p")]


def test_waiting_is_news_but_no_error() -> None:
    waiting = event(type_=WARNING, reason="DependencyNotReady", message="waiting for dependencies: infra is not Ready")
    assert waiting.happening is Happening.WAITING and not alert_matches(spec(severity=Severity.ERROR), waiting)
    first = event(type_=WARNING, reason="SourceNotReady", message="source GitRepository shop/app has no artifact yet")
    assert first.happening is Happening.WAITING and first.severity is Severity.INFO
    broken = event(type_=WARNING, reason="ArtifactFailed", message="could not fetch commit abc: not found")
    assert broken.happening is Happening.SYNC_FAILED and broken.severity is Severity.ERROR


def test_reasons_become_the_happenings_of_the_issue() -> None:
    cases = {
        ("Sync", NORMAL, "Applied"): Happening.REVISION_APPLIED,
        ("Sync", NORMAL, "Progressing"): Happening.PROGRESSING,
        ("Sync", WARNING, "ApplyFailed"): Happening.SYNC_FAILED,
        ("Sync", WARNING, "HealthCheckFailed"): Happening.HEALTH_DEGRADED,
        ("Sync", WARNING, "DriftDetected"): Happening.DRIFT_DETECTED,
        ("Sync", WARNING, "DriftCorrected"): Happening.DRIFT_CORRECTED,
        ("Sync", WARNING, "RolledBack"): Happening.ROLLED_BACK,
        ("Sync", NORMAL, "ApprovalRequired"): Happening.AWAITING_APPROVAL,
        ("Sync", NORMAL, "Approved"): Happening.APPROVED,
        ("GitRepository", WARNING, "VerificationFailed"): Happening.SIGNATURE_REFUSED,
        ("GitRepository", NORMAL, "NewArtifact"): Happening.NEW_REVISION,
        ("GitRepository", WARNING, "GitOperationFailed"): Happening.SOURCE_FAILED,
    }
    for (kind, type_, reason), happening in cases.items():
        assert event(kind=kind, type_=type_, reason=reason).happening is happening, reason
