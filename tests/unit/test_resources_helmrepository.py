"""Reading a HelmRepository: what the CRD admits reads completely; what it cannot check is refused,
naming the object and the field."""

from datetime import timedelta
from typing import Any

import pytest

from moor.crds import load_crds
from moor.resources import HELMREPOSITORY, SpecError
from moor.resources.helmrepository import HelmRepositorySpec, HelmRepositoryType


def helmrepository(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "HelmRepository",
        "metadata": {"name": "charts", "namespace": "shop"},
        "spec": spec,
    }


def test_an_http_repository_reads_completely() -> None:
    spec = HelmRepositorySpec.from_object(
        helmrepository(
            url="https://charts.example.com/stable/",
            secretRef={"name": "charts-auth"},
            certSecretRef={"name": "charts-ca"},
            interval="5m",
            timeout="30s",
            suspend=True,
        )
    )
    assert spec.url == "https://charts.example.com/stable"
    assert spec.type is HelmRepositoryType.DEFAULT
    assert spec.host == "charts.example.com"
    assert (spec.secret_name, spec.cert_secret_name) == ("charts-auth", "charts-ca")
    assert (spec.interval, spec.timeout, spec.suspend) == (timedelta(minutes=5), timedelta(seconds=30), True)


def test_defaults_are_the_crd_s() -> None:
    spec = HelmRepositorySpec.from_object(helmrepository(url="https://charts.example.com"))
    assert (spec.interval, spec.timeout, spec.suspend, spec.insecure) == (
        timedelta(minutes=10),
        timedelta(seconds=60),
        False,
        False,
    )
    crd = next(c for c in load_crds() if c["spec"]["names"]["kind"] == HELMREPOSITORY.kind)
    properties = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert (properties["interval"]["default"], properties["timeout"]["default"]) == ("10m", "60s")
    assert properties["type"]["enum"] == [kind.value for kind in HelmRepositoryType]
    assert crd["metadata"]["name"] == HELMREPOSITORY.crd_name


def test_an_oci_repository_names_its_registry() -> None:
    spec = HelmRepositorySpec.from_object(
        helmrepository(url="oci://registry.example.com:5000/team/charts", type="oci", insecure=True)
    )
    assert spec.host == "registry.example.com:5000"
    assert spec.oci_repository.repository == "team/charts"
    assert spec.insecure


@pytest.mark.parametrize(
    ("spec", "field", "problem"),
    [
        ({"url": "http://charts.example.com"}, "spec.url", "not loopback"),
        ({"url": "https://user:pw@charts.example.com"}, "spec.url", "credentials"),
        ({"url": "https://charts.example.com/?x=1"}, "spec.url", "query"),
        ({"url": "ftp://charts.example.com"}, "spec.url", "https://"),
        ({"url": "oci://registry.example.com/charts"}, "spec.url", "type: oci"),
        ({"url": "https://charts.example.com", "type": "oci"}, "spec.url", "oci://"),
        ({"url": "oci://registry.example.com/charts:1.0", "type": "oci"}, "spec.url", "tag"),
        ({"url": "https://charts.example.com", "insecure": True}, "spec.insecure", "type oci only"),
        ({"url": "https://charts.example.com", "type": "git"}, "spec.type", "one of default, oci"),
        ({"url": "https://charts.example.com", "interval": "0s"}, "spec.interval", "longer than zero"),
    ],
)
def test_what_the_crd_cannot_check_is_refused_naming_the_field(spec: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(SpecError) as raised:
        HelmRepositorySpec.from_object(helmrepository(**spec))
    assert field in str(raised.value) and problem in str(raised.value)
    assert "shop/charts" in str(raised.value)


def test_plain_http_is_allowed_on_loopback() -> None:
    for url in ("http://127.0.0.1:8879", "http://localhost:8879/charts", "http://[::1]:8879"):
        assert HelmRepositorySpec.from_object(helmrepository(url=url)).url == url


def test_the_crd_schema_is_structural_and_its_status_open() -> None:
    crd = next(c for c in load_crds() if c["spec"]["names"]["kind"] == HELMREPOSITORY.kind)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    pending = [("", schema)]
    while pending:
        path, node = pending.pop()
        assert node.get("type") or node.get("x-kubernetes-preserve-unknown-fields"), path
        pending.extend((f"{path}.{name}", child) for name, child in (node.get("properties") or {}).items())
        if "items" in node:
            pending.append((f"{path}[]", node["items"]))
    status = schema["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    assert {"charts", "versions", "artifact", "conditions"} <= set(status["properties"])
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
