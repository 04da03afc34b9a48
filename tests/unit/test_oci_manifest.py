"""Manifests and the layer chosen from them; the registry headers the client acts on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from moor.source import InvalidSourceSpec
from moor.source.oci import FLUX_CONTENT, OCI_LAYER, RegistryError, UnsupportedArtifact
from moor.source.oci.headers import next_page, parse_challenge
from moor.source.oci.manifest import (
    FLUX_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ImageIndex,
    ImageManifest,
    parse_manifest,
    select_layer,
    sha256_digest,
    single_manifest,
)

WHAT = "oci://host/app:1.0"


def digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def layer(media_type: str, n: int) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest(n), "size": 10 * n}


def manifest(*layers: dict[str, Any], **extra: Any) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": FLUX_CONFIG, "digest": digest(99), "size": 2},
        "layers": list(layers),
        **extra,
    }
    return json.dumps(document).encode()


def test_a_flux_manifest_is_read_with_its_annotations() -> None:
    raw = manifest(layer(FLUX_CONTENT, 1), annotations={"org.opencontainers.image.revision": "main@sha1:abc"})
    parsed = parse_manifest(raw, OCI_MANIFEST, WHAT)
    assert isinstance(parsed, ImageManifest)
    assert parsed.layers == (Descriptor(FLUX_CONTENT, digest(1), 10),)
    assert parsed.annotations == {"org.opencontainers.image.revision": "main@sha1:abc"}


def test_flux_content_is_preferred_over_a_generic_layer_wherever_it_stands() -> None:
    parsed = parse_manifest(manifest(layer(OCI_LAYER, 1), layer(FLUX_CONTENT, 2)), None, WHAT)
    assert isinstance(parsed, ImageManifest)
    assert select_layer(parsed, None, WHAT).digest == digest(2)


def test_a_generic_oci_layer_is_accepted_and_the_first_one_wins() -> None:
    parsed = parse_manifest(
        manifest(layer("application/json", 1), layer(OCI_LAYER, 2), layer(OCI_LAYER, 3)), None, WHAT
    )
    assert isinstance(parsed, ImageManifest)
    assert select_layer(parsed, None, WHAT).digest == digest(2)


def test_a_layer_selector_chooses_exactly_its_type() -> None:
    chart = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    parsed = parse_manifest(manifest(layer(FLUX_CONTENT, 1), layer(chart, 2)), None, WHAT)
    assert isinstance(parsed, ImageManifest)
    assert select_layer(parsed, chart, WHAT).digest == digest(2)


def test_a_layer_selector_for_something_not_a_tarball_is_an_invalid_spec() -> None:
    parsed = parse_manifest(manifest(layer(FLUX_CONTENT, 1)), None, WHAT)
    assert isinstance(parsed, ImageManifest)
    with pytest.raises(InvalidSourceSpec, match="does not name a gzip'd tarball"):
        select_layer(parsed, "application/json", WHAT)


def test_a_manifest_without_an_accepted_layer_is_refused_naming_the_types_it_has() -> None:
    parsed = parse_manifest(manifest(layer("application/vnd.example.sbom+json", 1), layer("text/plain", 2)), None, WHAT)
    assert isinstance(parsed, ImageManifest)
    with pytest.raises(UnsupportedArtifact) as refused:
        select_layer(parsed, None, WHAT)
    message = str(refused.value)
    assert WHAT in message
    assert FLUX_CONTENT in message and OCI_LAYER in message
    assert "it has application/vnd.example.sbom+json, text/plain" in message


def test_an_index_is_followed_only_when_it_lists_one_manifest() -> None:
    one = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [layer(OCI_MANIFEST, 5)]}).encode()
    index = parse_manifest(one, None, WHAT)
    assert isinstance(index, ImageIndex)
    assert single_manifest(index, WHAT).digest == digest(5)
    two = json.dumps({"manifests": [layer(OCI_MANIFEST, 5), layer(OCI_MANIFEST, 6)]}).encode()
    several = parse_manifest(two, OCI_INDEX, WHAT)
    assert isinstance(several, ImageIndex)
    with pytest.raises(UnsupportedArtifact, match="is an index of 2 manifests"):
        single_manifest(several, WHAT)


@pytest.mark.parametrize(
    ("raw", "cause"),
    [
        (b"not json", "is not JSON"),
        (b"[1]", "is not a JSON object"),
        (json.dumps({"mediaType": OCI_MANIFEST, "layers": []}).encode(), "has no config"),
        (manifest({"mediaType": OCI_LAYER, "digest": "sha256:zz", "size": 1}), "is not a digest"),
        (manifest({"mediaType": OCI_LAYER, "digest": digest(1)}), "lacks a mediaType, digest or size"),
        (manifest({"mediaType": OCI_LAYER, "digest": digest(1), "size": -1}), "lacks a mediaType, digest or size"),
        (manifest(layer(OCI_LAYER, 1), annotations={"a": 1}), "annotations are not a map of strings"),
    ],
)
def test_a_malformed_manifest_is_a_registry_error(raw: bytes, cause: str) -> None:
    with pytest.raises(RegistryError, match=cause):
        parse_manifest(raw, None, WHAT)


def test_a_document_of_another_kind_is_unsupported() -> None:
    with pytest.raises(UnsupportedArtifact, match=r"is a application/vnd\.docker\.distribution\.manifest\.v1"):
        parse_manifest(
            json.dumps({"mediaType": "application/vnd.docker.distribution.manifest.v1+json"}).encode(), None, WHAT
        )


def test_a_pushed_manifest_is_byte_for_byte_the_same_each_time() -> None:
    def build() -> ImageManifest:
        return ImageManifest(
            OCI_MANIFEST,
            Descriptor(FLUX_CONFIG, digest(1), 2),
            (Descriptor(FLUX_CONTENT, digest(2), 30),),
            {"org.opencontainers.image.source": "https://git.example/app.git"},
        )

    assert build().as_json() == build().as_json()
    assert parse_manifest(build().as_json(), None, WHAT) == build()
    assert sha256_digest(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_a_bearer_challenge_gives_realm_service_and_scope() -> None:
    header = 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'
    challenge = parse_challenge(header)
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
    }


def test_a_basic_challenge_and_missing_headers() -> None:
    basic = parse_challenge('Basic realm="Registry Realm"')
    assert basic is not None and basic.scheme == "basic"
    assert parse_challenge(None) is None
    assert parse_challenge("") is None


def test_the_next_page_of_tags_is_the_link_marked_next() -> None:
    assert next_page('</v2/app/tags/list?last=b&n=2>; rel="next"') == "/v2/app/tags/list?last=b&n=2"
    assert next_page('<https://x/prev>; rel="prev", </v2/x?n=1>; rel=next') == "/v2/x?n=1"
    assert next_page('<https://x/prev>; rel="prev"') is None
    assert next_page(None) is None
