"""The CRDs as files: complete against api.md, structural, and in agreement with moor.resources."""

import re
from collections.abc import Iterator
from typing import Any

import pytest

from moor.crds import load_crds
from moor.resources import (
    ALERT,
    GITREPOSITORY,
    GROUP,
    IMAGEPOLICY,
    IMAGEREPOSITORY,
    IMAGEUPDATE,
    PROVIDER,
    SYNC,
    SYNC_RECORD,
    parse_duration,
)
from moor.resources import gitrepository as gitrepository_spec
from moor.resources import sync as sync_spec

CRDS = load_crds()


def crd(kind: str) -> dict[str, Any]:
    return next(entry for entry in CRDS if entry["spec"]["names"]["kind"] == kind)


def version(kind: str) -> dict[str, Any]:
    [only] = crd(kind)["spec"]["versions"]
    return dict(only)


def schema(kind: str) -> dict[str, Any]:
    return dict(version(kind)["schema"]["openAPIV3Schema"])


def at(node: dict[str, Any], path: str) -> dict[str, Any]:
    """`spec.ref.branch` or `status.inventory[].kind` inside an OpenAPI schema."""
    for part in path.split("."):
        node = node["properties"][part[:-2]]["items"] if part.endswith("[]") else node["properties"][part]
    return node


def nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from nodes(child, f"{path}.{name}" if path else name)
    if "items" in node:
        yield from nodes(node["items"], f"{path}[]")


def test_every_crd_loads_from_package_data() -> None:
    crds = load_crds()
    assert [entry["metadata"]["name"] for entry in crds] == [
        "gitrepositories.moor.dev",
        "ocirepositories.moor.dev",
        "helmrepositories.moor.dev",
        "imagerepositories.moor.dev",
        "imagepolicies.moor.dev",
        "imageupdates.moor.dev",
        "syncs.moor.dev",
        "syncrecords.moor.dev",
        "providers.moor.dev",
        "alerts.moor.dev",
    ]
    assert all(entry["apiVersion"] == "apiextensions.k8s.io/v1" for entry in crds)
    assert all(entry["kind"] == "CustomResourceDefinition" for entry in crds)


@pytest.mark.parametrize(
    "kind", [GITREPOSITORY, IMAGEREPOSITORY, IMAGEPOLICY, IMAGEUPDATE, SYNC, SYNC_RECORD, PROVIDER, ALERT]
)
def test_names_scope_and_version(kind: Any) -> None:
    definition = crd(kind.kind)
    assert definition["metadata"]["name"] == kind.crd_name
    assert definition["spec"]["group"] == GROUP
    assert definition["spec"]["scope"] == "Namespaced"
    names = definition["spec"]["names"]
    assert (names["plural"], names["singular"]) == (kind.plural, kind.singular)
    assert names["categories"] == ["moor"]
    served = version(kind.kind)
    assert (served["name"], served["served"], served["storage"]) == ("v1", True, True)
    if kind not in (SYNC_RECORD, PROVIDER, ALERT):  # written by users or once, whole: no status
        assert served["subresources"] == {"status": {}}


def test_short_names_do_not_shadow_built_in_resources() -> None:
    built_in = {"po", "svc", "deploy", "cm", "ns", "sa", "ds", "sts", "rs", "ing", "pv", "pvc", "ev", "ep", "no"}
    short = crd("GitRepository")["spec"]["names"].get("shortNames", [])
    assert short == ["gitrepo"]
    assert not built_in & set(short)


GITREPOSITORY_FIELDS = [
    "spec.url",
    "spec.ref.branch",
    "spec.ref.tag",
    "spec.ref.semver",
    "spec.ref.commit",
    "spec.interval",
    "spec.timeout",
    "spec.secretRef.name",
    "spec.verify.mode",
    "spec.verify.secretRef.name",
    "spec.suspend",
    "status.artifact.revision",
    "status.artifact.fetchedAt",
    "status.artifact.author",
    "status.artifact.message",
    "status.conditions",
    "status.observedGeneration",
]
SYNC_FIELDS = [
    "spec.sourceRef.kind",
    "spec.sourceRef.name",
    "spec.sourceRef.namespace",
    "spec.path",
    "spec.helm.valuesFiles",
    "spec.helm.values",
    "spec.helm.releaseName",
    "spec.targetNamespace",
    "spec.interval",
    "spec.retryInterval",
    "spec.timeout",
    "spec.prune",
    "spec.allowEmpty",
    "spec.wait",
    "spec.force",
    "spec.dependsOn[].name",
    "spec.dependsOn[].namespace",
    "spec.serviceAccountName",
    "spec.drift.mode",
    "spec.drift.ignore[].kind",
    "spec.drift.ignore[].name",
    "spec.drift.ignore[].namespace",
    "spec.drift.ignore[].paths",
    "spec.rollback.onFailure",
    "spec.approval.mode",
    "spec.suspend",
    "status.lastAppliedRevision",
    "status.lastAttemptedRevision",
    "status.lastHealthyRevision",
    *(f"status.inventory[].{key}" for key in ("group", "version", "kind", "namespace", "name")),
    *(f"status.drift[].{key}" for key in ("group", "kind", "namespace", "name", "paths", "manager", "at")),
    *(
        f"status.history[].{key}"
        for key in ("revision", "author", "startedAt", "finishedAt", "result", "applied", "pruned", "approvedBy")
    ),
    "status.conditions",
    "status.observedGeneration",
]


@pytest.mark.parametrize(
    ("kind", "path"), [("GitRepository", p) for p in GITREPOSITORY_FIELDS] + [("Sync", p) for p in SYNC_FIELDS]
)
def test_every_field_of_the_api_is_in_the_schema(kind: str, path: str) -> None:
    assert at(schema(kind), path)


@pytest.mark.parametrize(
    ("kind", "path", "values"),
    [
        ("GitRepository", "spec.verify.mode", ["HEAD", "Tag", "TagAndHEAD"]),
        ("Sync", "spec.drift.mode", ["correct", "alert", "ignore"]),
        ("Sync", "spec.approval.mode", ["auto", "manual"]),
        ("Sync", "spec.sourceRef.kind", ["GitRepository", "OCIRepository", "HelmRepository"]),
        ("Sync", "status.conditions[].status", ["True", "False", "Unknown"]),
    ],
)
def test_enums(kind: str, path: str, values: list[str]) -> None:
    assert at(schema(kind), path)["enum"] == values


def test_the_enums_match_the_python_values() -> None:
    assert at(schema("GitRepository"), "spec.verify.mode")["enum"] == [m.value for m in gitrepository_spec.VerifyMode]
    assert at(schema("Sync"), "spec.drift.mode")["enum"] == [m.value for m in sync_spec.DriftMode]
    assert at(schema("Sync"), "spec.approval.mode")["enum"] == [m.value for m in sync_spec.ApprovalMode]


@pytest.mark.parametrize(
    ("kind", "path", "python_default"),
    [
        ("GitRepository", "spec.interval", gitrepository_spec.DEFAULT_INTERVAL),
        ("GitRepository", "spec.timeout", gitrepository_spec.DEFAULT_TIMEOUT),
        ("Sync", "spec.interval", sync_spec.DEFAULT_INTERVAL),
        ("Sync", "spec.retryInterval", sync_spec.DEFAULT_RETRY_INTERVAL),
        ("Sync", "spec.timeout", sync_spec.DEFAULT_TIMEOUT),
    ],
)
def test_duration_defaults_agree_with_the_parser(kind: str, path: str, python_default: Any) -> None:
    assert parse_duration(at(schema(kind), path)["default"]) == python_default


@pytest.mark.parametrize(
    ("kind", "path", "default"),
    [
        ("GitRepository", "spec.verify.mode", "HEAD"),
        ("GitRepository", "spec.suspend", False),
        ("Sync", "spec.sourceRef.kind", "GitRepository"),
        ("Sync", "spec.path", "./"),
        ("Sync", "spec.prune", sync_spec.DEFAULT_PRUNE),
        ("Sync", "spec.allowEmpty", False),
        ("Sync", "spec.wait", sync_spec.DEFAULT_WAIT),
        ("Sync", "spec.force", False),
        ("Sync", "spec.drift.mode", "correct"),
        ("Sync", "spec.rollback.onFailure", False),
        ("Sync", "spec.approval.mode", "auto"),
        ("Sync", "spec.suspend", False),
    ],
)
def test_other_defaults(kind: str, path: str, default: Any) -> None:
    assert at(schema(kind), path)["default"] == default


def test_required_fields() -> None:
    assert at(schema("GitRepository"), "spec")["required"] == ["url", "ref"]
    assert at(schema("GitRepository"), "spec.verify")["required"] == ["secretRef"]
    assert at(schema("Sync"), "spec")["required"] == ["sourceRef"]
    assert at(schema("Sync"), "spec.sourceRef")["required"] == ["name"]
    assert at(schema("Sync"), "spec.drift.ignore[]")["required"] == ["kind", "paths"]


DURATION_SAMPLES = ["1m", "30s", "1h30m", "500ms", "1.5s", "100us", "1d", "1 m", "m", "10", "-1s", "1h30"]


@pytest.mark.parametrize(("kind", "kind_name"), [("GitRepository", "interval"), ("Sync", "retryInterval")])
def test_the_duration_pattern_accepts_what_the_parser_accepts(kind: str, kind_name: str) -> None:
    pattern = re.compile(at(schema(kind), f"spec.{kind_name}")["pattern"])
    for sample in DURATION_SAMPLES:
        try:
            parse_duration(sample)
            parses = True
        except ValueError:
            parses = False
        assert bool(pattern.match(sample)) == parses, sample


def test_the_ref_and_commit_patterns_are_the_parsers() -> None:
    ref = at(schema("GitRepository"), "spec.ref")
    assert ref["properties"]["branch"]["pattern"] == f"^{gitrepository_spec.REF_NAME_PATTERN.pattern}$"
    assert ref["properties"]["tag"]["pattern"] == f"^{gitrepository_spec.REF_NAME_PATTERN.pattern}$"
    assert ref["properties"]["commit"]["pattern"] == f"^{gitrepository_spec.COMMIT_PATTERN.pattern}$"


def test_cel_rules_guard_refs_urls_paths_and_durations() -> None:
    def rules(kind: str, path: str) -> str:
        return " ".join(rule["rule"] for rule in at(schema(kind), path)["x-kubernetes-validations"])

    assert "has(self.branch)" in rules("GitRepository", "spec.ref")
    assert "has(self.commit)" in rules("GitRepository", "spec.ref")
    assert "https?|ssh|file" in rules("GitRepository", "spec.url")
    assert "[.][.]" in rules("Sync", "spec.path")
    for kind, path in [("GitRepository", "spec.interval"), ("Sync", "spec.timeout")]:
        assert "duration(self)" in rules(kind, path)


@pytest.mark.parametrize("kind", ["GitRepository", "Sync", "Provider", "Alert"])
def test_schemas_are_structural(kind: str) -> None:
    """Every node has a type, unless it explicitly preserves unknown fields (the API server's rule)."""
    for path, node in nodes(schema(kind)):
        assert node.get("type") or node.get("x-kubernetes-preserve-unknown-fields"), path
        if node.get("type") == "object" and path.endswith(("helm.values",)):
            assert node["x-kubernetes-preserve-unknown-fields"] is True


@pytest.mark.parametrize("kind", ["GitRepository", "Sync"])
def test_conditions_are_standard_metav1_conditions(kind: str) -> None:
    conditions = at(schema(kind), "status.conditions")
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert conditions["items"]["required"] == ["type", "status", "lastTransitionTime", "reason", "message"]
    assert conditions["items"]["properties"]["lastTransitionTime"]["format"] == "date-time"


@pytest.mark.parametrize(
    ("kind", "revision_path"),
    [("GitRepository", ".status.artifact.revision"), ("Sync", ".status.lastAppliedRevision")],
)
def test_printer_columns(kind: str, revision_path: str) -> None:
    columns = {
        column["name"]: column for column in version(kind)["additionalPrinterColumns"] if column.get("priority", 0) == 0
    }
    assert list(columns) == ["Revision", "Ready", "Status", "Age"]
    assert columns["Revision"]["jsonPath"] == revision_path
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Status"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].message'
    assert columns["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
