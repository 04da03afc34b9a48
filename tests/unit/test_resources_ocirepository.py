"""Reading an OCIRepository: what the CRD admits reads completely; what it cannot check is refused,
naming the object and the field."""

from datetime import timedelta
from typing import Any

import pytest

from moor.resources import OCIRepositorySpec, SpecError
from moor.resources.ocirepository import OciRef, OciVerifySpec, VerifyProvider
from moor.source.oci import OciReference


def ocirepository(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "manifests", "namespace": "shop"},
        "spec": spec,
    }


def test_a_full_spec_reads_completely() -> None:
    spec = OCIRepositorySpec.from_object(
        ocirepository(
            url="oci://registry.example.com:5000/team/manifests",
            ref={"semver": ">=1.0.0 <2.0.0"},
            layerSelector={"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"},
            secretRef={"name": "registry-auth"},
            certSecretRef={"name": "registry-ca"},
            interval="5m",
            timeout="30s",
            suspend=True,
        )
    )
    assert spec.repository == OciReference("registry.example.com:5000", "team/manifests")
    assert spec.ref.semver is not None and str(spec.ref) == "semver >=1.0.0 <2.0.0"
    assert spec.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert (spec.secret_name, spec.cert_secret_name) == ("registry-auth", "registry-ca")
    assert (spec.interval, spec.timeout, spec.suspend, spec.insecure) == (
        timedelta(minutes=5),
        timedelta(seconds=30),
        True,
        False,
    )


def test_without_a_ref_the_tag_latest_is_followed() -> None:
    spec = OCIRepositorySpec.from_object(ocirepository(url="oci://localhost:5000/manifests"))
    assert spec.ref == OciRef(tag="latest")
    assert spec.media_type is None


def test_verify_names_the_provider_and_the_trust_secret() -> None:
    spec = OCIRepositorySpec.from_object(
        ocirepository(url="oci://localhost/manifests", verify={"provider": "cosign", "secretRef": {"name": "keys"}})
    )
    assert spec.verify == OciVerifySpec(provider=VerifyProvider.COSIGN, secret_name="keys")
    assert OCIRepositorySpec.from_object(ocirepository(url="oci://localhost/manifests")).verify is None


def test_a_digest_ref_is_kept() -> None:
    digest = "sha256:" + "ab" * 32
    spec = OCIRepositorySpec.from_object(ocirepository(url="oci://localhost/manifests", ref={"digest": digest}))
    assert spec.ref == OciRef(digest=digest)


@pytest.mark.parametrize(
    ("spec", "field", "cause"),
    [
        ({"url": "https://registry.example.com/manifests"}, "spec.url", "oci://"),
        ({"url": "oci://registry.example.com/manifests:v1"}, "spec.url", "set spec.ref instead"),
        ({"url": "oci://user:pw@registry.example.com/manifests"}, "spec.url", "credentials"),
        ({"url": "oci://localhost/m", "ref": {"tag": "v1", "digest": "sha256:" + "0" * 64}}, "spec.ref", "at most one"),
        ({"url": "oci://localhost/m", "ref": {"tag": "-v1"}}, "spec.ref.tag", "tag"),
        ({"url": "oci://localhost/m", "ref": {"digest": "sha256:1234"}}, "spec.ref.digest", "digest"),
        ({"url": "oci://localhost/m", "ref": {"semver": "not a range"}}, "spec.ref.semver", ""),
        ({"url": "oci://localhost/m", "layerSelector": {}}, "spec.layerSelector.mediaType", "required"),
        ({"url": "oci://localhost/m", "secretRef": {"name": "Bad_Name"}}, "spec.secretRef.name", "DNS-1123"),
        ({"url": "oci://localhost/m", "verify": {"provider": "cosign"}}, "spec.verify.secretRef", "required"),
        (
            {"url": "oci://localhost/m", "verify": {"provider": "notation", "secretRef": {"name": "k"}}},
            "spec.verify.provider",
            "must be one of cosign",
        ),
    ],
)
def test_what_the_crd_cannot_check_is_refused_naming_the_field(spec: dict[str, Any], field: str, cause: str) -> None:
    with pytest.raises(SpecError) as raised:
        OCIRepositorySpec.from_object(ocirepository(**spec))
    message = str(raised.value)
    assert "OCIRepository shop/manifests" in message and field in message and cause in message, message
