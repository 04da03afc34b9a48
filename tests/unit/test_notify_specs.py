"""Provider and Alert specs: defaults, what is refused (with the field named), and agreement with the CRDs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from moor.crds import load_crds
from moor.notify.specs import AlertSpec, ProviderSpec, ProviderType, Severity
from moor.resources import SpecError


def provider(**spec: Any) -> dict[str, Any]:
    return {"kind": "Provider", "metadata": {"name": "p", "namespace": "shop"}, "spec": spec}


def alert(**spec: Any) -> dict[str, Any]:
    base = {"providerRef": {"name": "p"}, "eventSources": [{"kind": "Sync", "name": "*"}]}
    return {"kind": "Alert", "metadata": {"name": "a", "namespace": "shop"}, "spec": {**base, **spec}}


def test_provider_defaults() -> None:
    spec = ProviderSpec.from_object(provider(type="generic", address="https://hooks.example.com/moor"))
    assert spec == ProviderSpec(ProviderType.GENERIC, "https://hooks.example.com/moor", None, timedelta(seconds=15))


def test_github_needs_only_a_secret_and_defaults_to_the_public_api() -> None:
    spec = ProviderSpec.from_object(provider(type="github", secretRef={"name": "gh"}))
    assert spec.secret_name == "gh" and spec.address is None
    assert spec.type.sets_commit_status and spec.type.default_address == "https://api.github.com"


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"type": "slack", "address": "https://hooks.slack.com/services/T/B/X"}, "spec.address", "credential"),
        ({"type": "msteams", "address": "https://example.webhook.office.com/x"}, "spec.address", "credential"),
        ({"type": "github"}, "spec.secretRef", "token"),
        ({"type": "gitlab", "address": "https://gitlab.example.com"}, "spec.secretRef", "token"),
        ({"type": "generic"}, "spec.address", "secretRef"),
        ({"type": "generic", "address": "ftp://example.com"}, "spec.address", "http"),
        ({"type": "pager", "address": "https://example.com"}, "spec.type", "must be one of"),
        ({"address": "https://example.com"}, "spec.type", "required"),
        ({"type": "generic", "address": "https://e.com", "timeout": "soon"}, "spec.timeout", "invalid"),
    ],
)
def test_invalid_providers_name_the_field(spec: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        ProviderSpec.from_object(provider(**spec))
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "Provider shop/p" in str(caught.value)


def test_alert_defaults_and_sources() -> None:
    spec = AlertSpec.from_object(
        alert(
            eventSources=[{"kind": "Sync", "name": "web"}, {"kind": "GitRepository", "name": "*", "namespace": "git"}]
        )
    )
    assert spec.provider_name == "p"
    assert spec.severity is Severity.INFO and not spec.suspend and spec.exclusions == ()
    assert [(s.kind, s.name, s.namespace) for s in spec.sources] == [
        ("Sync", "web", "shop"),
        ("GitRepository", "*", "git"),
    ]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"providerRef": None}, "spec.providerRef"),
        ({"eventSources": []}, "spec.eventSources"),
        ({"eventSources": [{"kind": "Deployment", "name": "web"}]}, "spec.eventSources[0].kind"),
        ({"eventSources": [{"kind": "Sync", "name": "Web!"}]}, "spec.eventSources[0].name"),
        ({"eventSeverity": "warning"}, "spec.eventSeverity"),
        ({"exclusionList": ["(unclosed"]}, "spec.exclusionList[0]"),
    ],
)
def test_invalid_alerts_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        AlertSpec.from_object(alert(**spec))
    assert caught.value.field == field


def schema(kind: str) -> dict[str, Any]:
    crd = next(c for c in load_crds() if c["spec"]["names"]["kind"] == kind)
    [version] = crd["spec"]["versions"]
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"])


def test_the_crds_enums_and_defaults_are_the_python_ones() -> None:
    provider_schema = schema("Provider")["properties"]
    assert provider_schema["type"]["enum"] == [member.value for member in ProviderType]
    assert provider_schema["timeout"]["default"] == "15s"
    alert_schema = schema("Alert")["properties"]
    assert alert_schema["eventSeverity"]["enum"] == [member.value for member in Severity]
    assert alert_schema["eventSeverity"]["default"] == "info"
    kinds = alert_schema["eventSources"]["items"]["properties"]["kind"]["enum"]
    assert kinds == ["Sync", "GitRepository", "OCIRepository", "HelmRepository"]


def test_the_provider_crd_refuses_credentials_in_the_spec() -> None:
    properties = schema("Provider")["properties"]
    assert "token" not in properties and "hmacKey" not in properties
    rules = " ".join(rule["rule"] for rule in schema("Provider")["x-kubernetes-validations"])
    assert "slack" in rules and "msteams" in rules and "has(self.secretRef)" in rules
