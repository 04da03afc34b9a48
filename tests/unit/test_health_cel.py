"""CEL health checks: Flux's healthCheckExprs meaning, fast failure on bad expressions, and the built-in
library judged against recorded objects (tests/unit/fixtures/health/<name>__<state>_<what>.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from moor.health import HealthState, assess_health
from moor.health.cel import InvalidHealthCheck, assess_with_checks, compile_checks
from moor.health.library import LIBRARY, library_checks

FIXTURES = Path(__file__).parent / "fixtures" / "health"
_STATES = {"healthy": HealthState.HEALTHY, "progressing": HealthState.PROGRESSING, "failed": HealthState.FAILED}

CERTIFICATE_CHECK = {
    "apiVersion": "cert-manager.io/v1",
    "kind": "Certificate",
    "inProgress": "status.conditions.exists(c, c.type == 'Issuing' && c.status == 'True')",
    "failed": "status.conditions.exists(c, c.type == 'Ready' && c.status == 'False' && c.reason == 'Failed')",
    "current": "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')",
}


def certificate(*conditions: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "web-tls", "namespace": "guestbook", "generation": generation},
        "spec": {"secretName": "web-tls"},
        "status": {"conditions": list(conditions)},
    }


def condition(kind: str, status: str, reason: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason}


def recorded() -> list[Path]:
    return sorted(FIXTURES.glob("*.yaml"))


@pytest.mark.parametrize("path", recorded(), ids=lambda path: path.stem)
def test_the_library_judges_each_recorded_object_as_its_project_does(path: Path) -> None:
    expected = _STATES[path.stem.split("__")[1].split("_")[0]]
    obj = yaml.safe_load(path.read_text())

    health = assess_with_checks(obj, library_checks())

    assert health is not None, f"no built-in check for {obj['apiVersion']} {obj['kind']}"
    assert health.state is expected, health.message
    assert obj["metadata"]["name"] in health.message


def test_every_kind_the_library_promises_has_recorded_objects_in_all_its_states() -> None:
    seen: dict[str, set[str]] = {}
    for path in recorded():
        obj = yaml.safe_load(path.read_text())
        seen.setdefault(obj["kind"], set()).add(path.stem.split("__")[1].split("_")[0])
    for kind in ("Certificate", "HelmRelease", "Kustomization", "Rollout", "Bucket", "Kafka", "Cluster"):
        assert seen[kind] == {"healthy", "progressing", "failed"}, kind
    assert {"Issuer", "ClusterIssuer", "Provider", "ProviderConfig"} <= set(seen)


def test_a_certificate_goes_from_progressing_to_healthy_as_its_status_changes() -> None:
    checks = compile_checks([CERTIFICATE_CHECK])
    issuing = certificate(condition("Issuing", "True", "DoesNotExist"), condition("Ready", "False", "DoesNotExist"))
    issued = certificate(condition("Ready", "True", "Ready"))

    first = assess_with_checks(issuing, checks)
    then = assess_with_checks(issued, checks)

    assert first is not None and first.state is HealthState.PROGRESSING
    assert then is not None and then.state is HealthState.HEALTHY
    assert then.message == "Certificate guestbook/web-tls: current by its CEL health check (Ready: Ready)"


def test_the_order_is_flux_s_in_progress_then_failed_then_current() -> None:
    checks = compile_checks([{**CERTIFICATE_CHECK, "failed": "true", "current": "true", "inProgress": "true"}])
    assert (health := assess_with_checks(certificate(), checks)) and health.state is HealthState.PROGRESSING
    checks = compile_checks([{**CERTIFICATE_CHECK, "failed": "true", "current": "true", "inProgress": "false"}])
    assert (health := assess_with_checks(certificate(), checks)) and health.state is HealthState.FAILED
    checks = compile_checks([{**CERTIFICATE_CHECK, "failed": "false", "current": "false", "inProgress": "false"}])
    assert (health := assess_with_checks(certificate(), checks)) and health.state is HealthState.PROGRESSING


def test_an_unobserved_generation_is_progressing_whatever_the_expressions_say() -> None:
    checks = compile_checks([{"apiVersion": "example.com/v1", "kind": "Widget", "current": "true"}])
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "generation": 3},
        "status": {"observedGeneration": 2},
    }

    health = assess_with_checks(widget, checks)

    assert health is not None and health.state is HealthState.PROGRESSING
    assert "generation 3" in health.message


def test_a_missing_field_read_without_has_fails_at_once_naming_the_expression() -> None:
    checks = compile_checks([{**CERTIFICATE_CHECK, "inProgress": "", "failed": ""}])
    no_status_yet = certificate()
    del no_status_yet["status"]

    health = assess_with_checks(no_status_yet, checks)

    assert health is not None and health.state is HealthState.FAILED
    assert CERTIFICATE_CHECK["current"] in health.message
    assert "cannot be evaluated" in health.message
    assert "conditions" in health.message


def test_has_guards_a_missing_status_without_has_status() -> None:
    checks = compile_checks([{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "current": "has(status.x)"}])
    no_status_yet = certificate()
    del no_status_yet["status"]

    health = assess_with_checks(no_status_yet, checks)

    assert health is not None and health.state is HealthState.PROGRESSING


def test_an_expression_that_is_not_a_bool_fails_naming_its_type() -> None:
    checks = compile_checks([{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "current": "metadata.name"}])

    health = assess_with_checks(certificate(), checks)

    assert health is not None and health.state is HealthState.FAILED
    assert "string, not bool" in health.message


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({**CERTIFICATE_CHECK, "current": "status.conditions.exists(c, c.type == "}, "current: the CEL expression"),
        ({**CERTIFICATE_CHECK, "failed": "nonsense.field == 1"}, "undeclared reference to 'nonsense"),
        ({"apiVersion": "cert-manager.io/v1", "kind": "Certificate"}, "needs a current expression"),
        ({"kind": "Certificate", "current": "true"}, "needs apiVersion and kind"),
        ({**CERTIFICATE_CHECK, "healthy": "true"}, "unknown fields healthy"),
        ({**CERTIFICATE_CHECK, "current": 3}, "must be a CEL expression"),
    ],
)
def test_an_entry_that_cannot_be_compiled_reports_itself_when_compiled(entry: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidHealthCheck) as raised:
        compile_checks([entry])
    assert words in str(raised.value)
    assert "Certificate" in str(raised.value)


def test_kinds_without_a_check_are_left_to_the_built_in_rules() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "a"}}

    assert assess_with_checks(deployment, library_checks()) is None
    assert assess_health(deployment).state is not None


def test_the_version_is_not_compared_only_group_and_kind() -> None:
    checks = compile_checks([{**CERTIFICATE_CHECK, "apiVersion": "cert-manager.io/v1alpha2"}])
    assert assess_with_checks(certificate(condition("Ready", "True")), checks) is not None


def test_a_sync_s_own_check_overrides_the_library_for_its_kind() -> None:
    own = compile_checks([{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "current": "true"}])
    checks = library_checks().overridden_by(own)
    issuing = certificate(condition("Issuing", "True"), condition("Ready", "False"))

    health = assess_with_checks(issuing, checks)

    assert health is not None and health.state is HealthState.HEALTHY
    library_health = assess_with_checks(issuing, library_checks())
    assert library_health is not None and library_health.state is HealthState.PROGRESSING


def test_flux_optional_field_syntax_and_string_functions_are_available() -> None:
    checks = compile_checks(
        [
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "current": "status.?conditions.orValue([]).exists(c, c.type.lowerAscii() == 'ready')",
            }
        ]
    )
    ready = certificate(condition("Ready", "True"))
    assert (health := assess_with_checks(ready, checks)) and health.state is HealthState.HEALTHY


def test_the_library_compiles_and_names_the_kinds_of_the_issue() -> None:
    kinds = {(entry["apiVersion"].split("/")[0], entry["kind"]) for entry in LIBRARY}
    assert ("cert-manager.io", "Certificate") in kinds
    assert ("postgresql.cnpg.io", "Cluster") in kinds
    assert library_checks() is library_checks()


def test_an_unchanged_object_is_judged_once_and_a_new_resource_version_again() -> None:
    checks = compile_checks([CERTIFICATE_CHECK])
    issuing = certificate(condition("Issuing", "True"), condition("Ready", "False"))
    issuing["metadata"].update(uid="u-1", resourceVersion="10")
    issued = certificate(condition("Ready", "True"))
    issued["metadata"].update(uid="u-1", resourceVersion="11")

    first = assess_with_checks(issuing, checks)
    again = assess_with_checks(issuing, checks)
    then = assess_with_checks(issued, checks)

    assert first is again
    assert then is not None and then.state is HealthState.HEALTHY
